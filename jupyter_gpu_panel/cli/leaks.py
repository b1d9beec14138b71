"""``jupyter-gpu-panel leaks TRACE [--pid PID] [--capacity BYTES] --json``: a stable contract.

With ``--json`` exactly one JSON object is printed, and only the contract's fields:

* steps traces: ``{"source": "steps", "leak", "actionable", "onset_step", "bytes_per_step",
  "bytes_per_second", "steps_to_oom", "seconds_to_oom"}``
* NVML traces: ``{"source": "nvml", "processes": [{"pid", "leak", "actionable",
  "bytes_per_second", "seconds_to_oom"}]}`` (only ``--pid`` when given).

``--capacity`` is an upper bound on the memory available, never a replacement: a steps trace
is still bounded by the limit the probe recorded and the device's free memory it read (else
the trace's ``mem_total``, else the card size recorded beside it: ``NAME.nvml.jsonl`` or
``meta.jsonl``); an NVML trace by its ``mem_total`` and the device's free memory (other
processes count). The verdicts are the server's own (``memory.verdict``), so the CLI and the
panel agree on every trace. Exit status: 0 on a verdict (leak or not), 2 on a bad file or
arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, Optional

from ..memory.traces import NvmlTrace, TraceError, read_trace, sibling_mem_total
from ..memory.verdict import nvml_verdicts, verdict_from_trace
from ..memory.wording import human_bytes, leak_message, onset_phrase
from ..probe import protocol as P
from .errors import fail, note

STEP_FIELDS = (
    "leak",
    "actionable",
    "onset_step",
    "bytes_per_step",
    "bytes_per_second",
    "steps_to_oom",
    "seconds_to_oom",
)
PROC_FIELDS = ("pid", "leak", "actionable", "bytes_per_second", "seconds_to_oom")


def _finite(v: Any) -> Any:
    """JSON has no infinity or NaN: those become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def nvml_contract(trace: NvmlTrace, capacity: Optional[float], pid: Optional[int]) -> dict[str, Any]:
    """The ``--json`` object of an NVML trace: the server's per-pid verdicts, contract fields only."""
    procs = nvml_verdicts(trace.rows, capacity, pid)
    return {"source": "nvml", "processes": [{k: _finite(p[k]) for k in PROC_FIELDS} for p in procs]}


def trace_pids(trace: NvmlTrace) -> list[int]:
    return sorted(
        {
            p["pid"]
            for r in trace.rows
            for p in r.get("procs") or []
            if isinstance(p, dict) and isinstance(p.get("pid"), int)
        }
    )


def _human(rep: dict[str, Any]) -> str:
    if rep["source"] == "steps":
        onset = onset_phrase(rep) if rep["leak"] else ""
        return leak_message(rep) + (f"\n{onset}" if onset else "")
    return "\n".join(f"pid {p['pid']}: {leak_message(p)}" for p in rep["processes"]) or "no processes in the trace"


def _iteration_line(report: dict[str, Any]) -> str:
    """What one step is and what bounds the headroom: ``2 optimizer steps an iteration;
    headroom bounded by device free (6.2 GiB)``."""
    spi = report.get("steps_per_iteration")
    calls = "optimizer step" if report.get("step_source") != "forward" else "top-level module call"
    what = "one step is one record" if spi is None else f"{spi:g} {calls}{'' if spi == 1 else 's'} an iteration"
    if report.get("step_source") == "timer":
        what = f"read by the probe's clock every {P.CLOCK_SECONDS:g} s (no optimizer step, no module call)"
    headroom = report.get("headroom")
    room = "" if headroom is None else f" ({human_bytes(headroom)}{' over' if headroom < 0 else ''})"
    return f"{what}; headroom bounded by {report['headroom_bound']}{room}"


def run(args: argparse.Namespace) -> int:
    if args.capacity is not None and not (math.isfinite(args.capacity) and args.capacity > 0):
        return fail("leaks", f"--capacity must be a positive number of bytes, got {args.capacity:g}")
    try:
        trace = read_trace(args.trace)
    except (OSError, TraceError) as exc:
        return fail("leaks", str(exc))
    if isinstance(trace, NvmlTrace):
        if args.pid is not None and args.pid not in trace_pids(trace):
            pids = ", ".join(map(str, trace_pids(trace))) or "none"
            return fail("leaks", f"no process {args.pid} in the trace (its pids: {pids})")
        out = nvml_contract(trace, args.capacity, args.pid)
        report = None
    else:
        if args.pid is not None:
            return fail("leaks", "--pid applies to NVML traces; a steps trace is one process")
        report = verdict_from_trace(trace, args.capacity, sibling_mem_total(args.trace))
        if report is None:
            return fail("leaks", f"the trace holds {len(trace)} valid step(s); a verdict needs 3")
        if report["capacity_note"]:
            note("leaks", report["capacity_note"])
        if trace.skipped:
            note("leaks", f"skipped {trace.skipped} invalid record(s)")
        out = {"source": "steps", **{k: _finite(report[k]) for k in STEP_FIELDS}}
    if args.json:
        print(json.dumps(out))
    else:
        print(_human(out if report is None else {**out, **{k: report[k] for k in ("current_step", "step_source")}}))
        if report is not None:
            print(_iteration_line(report))
            if report["reason"]:
                print(f"why: {report['reason']}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "leaks",
        help="detect a GPU memory leak and forecast the OOM in a recorded trace",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("trace", metavar="TRACE", help="a *.iters.jsonl (per step) or *.nvml.jsonl (per time) trace")
    p.add_argument("--pid", type=int, default=None, help="NVML traces: report only this process")
    p.add_argument(
        "--capacity",
        type=float,
        default=None,
        metavar="BYTES",
        help="an upper bound on the memory available, bytes (the trace's own bounds still apply)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (the stable contract)")
    p.set_defaults(func=run)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-gpu-panel")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["leaks", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
