"""``jupyter-gpu-panel leaks TRACE [--pid PID] [--capacity BYTES] --json``: a stable contract.

With ``--json`` exactly one JSON object is printed, and only the contract's fields:

* steps traces: ``{"source": "steps", "leak", "actionable", "onset_step", "bytes_per_step",
  "bytes_per_second", "steps_to_oom", "seconds_to_oom"}``
* NVML traces: ``{"source": "nvml", "processes": [{"pid", "leak", "actionable",
  "bytes_per_second", "seconds_to_oom"}]}`` (only ``--pid`` when given).

``--capacity`` overrides the memory available; by default a steps trace uses the limit the
probe recorded, else the trace's ``mem_total``, else the card size recorded beside it
(``NAME.nvml.jsonl`` or ``meta.jsonl``); an NVML trace uses its ``mem_total``. Exit status:
0 on a verdict (leak or not), 2 on a bad file or arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Optional, Sequence

from . import leaks
from .leak_traces import NvmlTrace, StepTrace, TraceError, read_trace, sibling_mem_total
from .wording import leak_message

#: Used only when neither the command line nor the trace says how much memory there is.
FALLBACK_CAPACITY = 80 * 2**30

STEP_FIELDS = ("leak", "actionable", "onset_step", "bytes_per_step", "bytes_per_second", "steps_to_oom", "seconds_to_oom")
PROC_FIELDS = ("pid", "leak", "actionable", "bytes_per_second", "seconds_to_oom")


def _finite(v: Any) -> Any:
    """JSON has no infinity or NaN: those become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def steps_verdict(trace: StepTrace, capacity: Optional[float], path: Optional[str] = None) -> tuple[dict[str, Any], leaks.StepsReport, Optional[str]]:
    note = None
    if capacity is None:
        capacity = trace.limit or trace.mem_total or (sibling_mem_total(path) if path else None)
    if capacity is None:
        capacity = FALLBACK_CAPACITY
        note = f"no capacity in the trace: assuming {FALLBACK_CAPACITY / 2**30:.0f} GiB (use --capacity)"
    report = leaks.analyze_steps(
        trace.steps,
        trace.allocated,
        reserved=trace.reserved,
        capacity=capacity,
        t=trace.t,
        peak=trace.peak,
        alloc_retries=trace.alloc_retries,
    )
    full = report.to_json()
    out = {"source": "steps", **{k: _finite(full[k]) for k in STEP_FIELDS}}
    return out, report, note


def nvml_verdict(trace: NvmlTrace, capacity: Optional[float], pid: Optional[int]) -> dict[str, Any]:
    procs = leaks.analyze_nvml(trace.rows, capacity=capacity, pid=pid)
    return {"source": "nvml", "processes": [{k: _finite(p[k]) for k in PROC_FIELDS} for p in procs]}


def _human(rep: dict[str, Any]) -> str:
    if rep["source"] == "steps":
        onset = rep["onset_step"] if rep["leak"] else None
        return leak_message(rep) + ("" if onset is None else f"\ngrowing since step {onset:,}")
    return "\n".join(f"pid {p['pid']}: {leak_message(p)}" for p in rep["processes"]) or "no processes in the trace"


def run(args: argparse.Namespace) -> int:
    try:
        trace = read_trace(args.trace)
    except (OSError, TraceError) as exc:
        print(f"jupyter-gpu-panel leaks: {exc}", file=sys.stderr)
        return 2
    if isinstance(trace, NvmlTrace):
        out = nvml_verdict(trace, args.capacity, args.pid)
        extra = None
    else:
        out, report, note = steps_verdict(trace, args.capacity, args.trace)
        if note:
            print(f"jupyter-gpu-panel leaks: {note}", file=sys.stderr)
        extra = report
    if args.json:
        print(json.dumps(out))
    else:
        print(_human(out if extra is None else {**out, "current_step": extra.current_step}))
        if extra is not None and extra.reason:
            print(f"why: {extra.reason}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "leaks",
        help="detect a GPU memory leak and forecast the OOM in a recorded trace",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("trace", metavar="TRACE", help="a *.iters.jsonl (per step) or *.nvml.jsonl (per time) trace")
    p.add_argument("--pid", type=int, default=None, help="NVML traces: report only this process")
    p.add_argument("--capacity", type=float, default=None, metavar="BYTES", help="memory available, bytes (default: from the trace)")
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
