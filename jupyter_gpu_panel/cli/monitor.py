"""``snapshot``, ``watch`` and ``record``: the sampler from a terminal."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

from ..metrics.readings import STATE_ERROR
from ..metrics.sampler import MIN_INTERVAL, Sampler, Snapshot
from ..metrics.snapshot_document import snapshot_json
from ..metrics.sources import SOURCES, make_source
from ..metrics.sources.base import version_fields
from ..metrics.trace_format import sidecar_path, trace_record
from .errors import fail, os_error_text, unwritable

GiB = 1024**3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source", choices=SOURCES, default="auto", help="where readings come from (default: auto = NVML)"
        )
        p.add_argument("--replay-file", help="trace for --source replay (default: the bundled H100 recording)")
        p.add_argument("--visible-only", action="store_true", help="only the GPUs in CUDA_VISIBLE_DEVICES")

    p = sub.add_parser("snapshot", help="print every GPU once, like nvidia-smi")
    common(p)
    p.add_argument("--json", action="store_true", help="print the API's JSON documents instead of a table")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("watch", help="refresh the table until Ctrl-C")
    common(p)
    p.add_argument("--interval", type=float, default=1.0, help=f"seconds between refreshes (min {MIN_INTERVAL})")
    p.add_argument("--count", type=int, default=0, help="stop after this many refreshes (0: never)")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("record", help="record a *.nvml.jsonl trace that `--source replay` can play")
    common(p)
    p.add_argument("--seconds", type=float, required=True, help="how long to record")
    p.add_argument("--out", required=True, help="output file, e.g. mygpu.nvml.jsonl")
    p.add_argument(
        "--interval", type=float, default=0.1, help=f"seconds between samples (default 0.1, min {MIN_INTERVAL})"
    )
    p.set_defaults(func=cmd_record)


def open_sampler(args: argparse.Namespace, interval: float = 1.0) -> Sampler:
    """The sampler on the chosen source, opened; its status says whether it can read."""
    source = make_source(args.source, replay_file=args.replay_file, visible_only=args.visible_only)
    sampler = Sampler(source, interval=interval, slow_interval=interval, history_seconds=60)
    sampler.open()
    return sampler


def _source_failed(command: str, sampler: Sampler) -> int:
    sampler.stop()
    st = sampler.status
    # "error" is no state worth naming (it would read "error: error: ..." after fail's prefix)
    text = (st.message or st.state) if st.state == STATE_ERROR else f"{st.state}: {st.message}"
    if st.source == "nvml":
        text += " Without a GPU, try `--source replay`"
    return fail(command, text)


def _bad_interval(args: argparse.Namespace) -> Optional[str]:
    """Why ``--interval`` (and ``--count``) cannot be used, or None: the sampler would clamp them silently."""
    interval = args.interval
    if not (math.isfinite(interval) and interval >= MIN_INTERVAL):
        return f"--interval must be at least {MIN_INTERVAL} seconds, got {interval:g}"
    if getattr(args, "count", 0) < 0:
        return f"--count must be 0 (never stop) or more, got {args.count}"
    return None


def _first_snapshot(sampler: Sampler) -> Snapshot:
    """One tick with the slow fields included (in the server they lag behind by design)."""
    sampler.refresh_slow()
    return sampler.tick()


def cmd_snapshot(args: argparse.Namespace) -> int:
    sampler = open_sampler(args)
    if not sampler.status.ok and not args.json:
        return _source_failed("snapshot", sampler)
    try:
        snap = _first_snapshot(sampler) if sampler.status.ok else Snapshot(t=time.time())
        if args.json:
            doc = {
                "status": sampler.status_json(),
                "devices": [d.to_json() for d in sampler.devices],
                **snapshot_json(sampler.status, snap),
            }
            print(json.dumps(doc, indent=1))
        else:
            print_table(sampler, snap, sys.stdout)
    finally:
        sampler.stop()
    return 0 if sampler.status.ok else 2


def cmd_watch(args: argparse.Namespace) -> int:
    problem = _bad_interval(args)
    if problem:
        return fail("watch", problem)
    sampler = open_sampler(args, interval=args.interval)
    if not sampler.status.ok:
        return _source_failed("watch", sampler)
    try:
        n = 0
        snap = _first_snapshot(sampler)
        while True:
            sys.stdout.write("\x1b[H\x1b[2J" if sys.stdout.isatty() else "\n")
            print_table(sampler, snap, sys.stdout)
            sys.stdout.flush()
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(sampler.interval)
            snap = sampler.tick()
    finally:
        sampler.stop()


def cmd_record(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        return fail("record", "--seconds must be positive")
    problem = _bad_interval(args)
    if problem:
        return fail("record", problem)
    out = Path(args.out)
    problem = unwritable(out)
    if problem:
        return fail("record", problem)
    sampler = open_sampler(args, interval=args.interval)
    if not sampler.status.ok:
        return _source_failed("record", sampler)
    multi = len(sampler.devices) > 1
    written = 0
    try:
        st = sampler.status
        side = {
            "comment": "Static facts of the recorded GPUs (jupyter-gpu-panel record).",
            "vendor": sampler.source.vendor,
            **version_fields(st, sampler.source.vendor),
            "devices": [d.to_json() for d in sampler.devices],
        }
        try:
            sidecar_path(out).write_text(json.dumps(side, indent=1), encoding="utf-8")
            fh = out.open("w", encoding="utf-8")
        except OSError as err:
            return fail("record", os_error_text(err))
        end = time.monotonic() + args.seconds
        next_tick = time.monotonic()
        with fh:
            while time.monotonic() < end:
                snap = sampler.tick()
                for reading in snap.gpus:
                    if reading.state == "ok":
                        fh.write(json.dumps(trace_record(reading, multi)) + "\n")
                        written += 1
                fh.flush()  # a live recording can be replayed or analysed while it grows
                next_tick += sampler.interval
                time.sleep(max(0.0, next_tick - time.monotonic()))
    finally:
        sampler.stop()
    print(f"recorded {written} samples of {len(sampler.devices)} GPU(s) to {out}", file=sys.stderr)
    return 0


def _gb(value: Optional[int]) -> str:
    return "-" if value is None else f"{value / GiB:.1f}"


def _v(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def print_table(sampler: Sampler, snap: Snapshot, out: TextIO) -> None:
    st = sampler.status
    out.write(
        f"jupyter-gpu-panel  source={st.source}  driver={st.driver_version or '-'}  "
        f"CUDA={st.cuda_driver_version or '-'}  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(snap.t))}\n"
    )
    if not st.ok:
        out.write(f"{st.state}: {st.message}\n")
        return
    names = {d.index: d.name or "?" for d in sampler.devices}
    header = (
        f"{'GPU':>3}  {'Name':<28} {'Temp':>5} {'Power':>13} {'Memory (GiB)':>14} {'Util':>5} {'SM MHz':>7}  Throttle"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    for g in snap.gpus:
        if g.state != "ok":
            out.write(f"{g.index:>3}  {names.get(g.index, '?')[:28]:<28} {g.state.upper()}: {g.error}\n")
            continue
        watts = None if g.power_mw is None else g.power_mw // 1000
        limit = None if g.power_limit_mw is None else g.power_limit_mw // 1000
        power = f"{_v(watts)}/{_v(limit)} W"
        mem = f"{_gb(g.mem_used)}/{_gb(g.mem_total)}"
        reasons = ", ".join(g.throttle_reasons) if g.throttle_reasons else "-"
        out.write(
            f"{g.index:>3}  {names.get(g.index, '?')[:28]:<28} {_v(g.temp_c, 'C'):>5} {power:>13} {mem:>14} "
            f"{_v(g.util_gpu, '%'):>5} {_v(g.clock_sm):>7}  {reasons}\n"
        )
    procs = [p for g in snap.gpus for p in g.processes]
    out.write(f"\n{'GPU':>3} {'PID':>8} {'User':<12} {'Type':<8} {'Memory':>10}  Command\n")
    if not procs:
        out.write("    no processes are using a GPU\n")
    for p in procs:
        used = "-" if p.used is None else f"{p.used / 2**20:.0f} MiB"
        cmd = (p.command or p.name or "?")[:60]
        out.write(f"{p.gpu:>3} {p.pid:>8} {(p.user or '-')[:12]:<12} {p.type:<8} {used:>10}  {cmd}\n")
