"""Print the leak detector's verdicts on every recorded scenario, as issue 4 checks them.

    python tests/perf/report_leaks.py

One row per scenario of ``../shared/traces/{h100,h100-mlp}`` and ``tests/data/leaks/h100-extra``:
the truth from ``meta.jsonl``, the verdict on the whole steps file and per pid on the NVML file,
the step of the first alarm on prefixes (and how far after the onset), and for runs capped to an
OOM the forecast error at the first alarm. The pass/fail checks live in
``tests/test_leaks_traces.py``; this is the readable summary quoted in the README.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from test_leaks_traces import DIRS, capacity_of, first_alarm, nvml_checks, verdict  # noqa: E402

from jupyter_gpu_panel.memory.traces import read_records  # noqa: E402


def nvml_cell(d: Path, m: dict[str, Any]) -> tuple[str, bool]:
    """The pids NVML alone flags, against what the issue expects of it (growth >= 256 MiB, >= 50 samples)."""
    checks = nvml_checks(d, m)
    flagged = ",".join(str(pid) for pid, got, _ in checks if got) or "none"
    expected = ",".join(str(pid) for pid, _, want in checks if want) or "none"
    return f"{flagged} (want {expected})", all(got == want for _, got, want in checks)


def row(d: Path, m: dict[str, Any]) -> list[str]:
    path = d / f"{m['scenario']}.iters.jsonl"
    recs = read_records(path)
    cap = capacity_of(d, m)
    whole = verdict(recs, cap, path)
    alarm: Optional[int] = first_alarm(recs, cap, path) if m["actionable"] else None
    after = "" if alarm is None or m.get("onset") is None else f"+{alarm - int(m['onset'])}"
    err = ""
    if m.get("oom_at") is not None and alarm is not None:
        at_alarm = verdict([r for r in recs if r["i"] <= alarm], cap, path)
        truth = int(m["oom_at"]) - alarm
        err = f"{at_alarm['steps_to_oom']:.0f} vs {truth} ({(at_alarm['steps_to_oom'] - truth) / truth:+.0%})"
    nvml, nvml_ok = nvml_cell(d, m)
    ok = whole["actionable"] == bool(m["actionable"]) and nvml_ok
    return [
        f"{d.name}/{m['scenario']}",
        "yes" if m["actionable"] else "no",
        "yes" if whole["actionable"] else "no",
        nvml,
        "" if alarm is None else f"{alarm} {after}".strip(),
        err,
        "ok" if ok else "WRONG",
    ]


def main() -> int:
    head = ["scenario", "truth", "steps verdict", "NVML alone flags", "first alarm (after onset)", "steps to OOM at alarm", ""]
    rows = [row(d, m) for d in DIRS if (d / "meta.jsonl").is_file() for m in read_records(d / "meta.jsonl")]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    wrong = sum(r[-1] == "WRONG" for r in rows)
    print(f"{len(rows)} scenarios, {wrong} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
