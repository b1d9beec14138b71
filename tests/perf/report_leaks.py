"""Print the leak detector's verdicts on every recorded scenario, as issue 4 checks them.

    python tests/perf/report_leaks.py

One row per scenario of ``tests/data/traces/{h100,h100-mlp}`` and ``tests/data/leaks/h100-extra``:
the truth from ``meta.jsonl``, the verdict on the whole steps file and per pid on the NVML file,
when NVML alone first flags the leaking pid (seconds after the onset, and how much it had grown),
the step of the first alarm on prefixes (and how far after the onset), and for runs that reached
an OOM the forecast and its error at the first alarm (for a second process that filled the card
mid-run: once its memory shows). Steps are iterations where the probe recorded them
(``tests/data/leaks/h200-round2``: a GAN's two optimizer steps are one iteration). The pass/fail checks live in
``tests/test_leaks_traces.py``; this is the readable summary quoted in the README.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # this checkout, before any installed copy

from test_leaks_traces import (  # noqa: E402
    DIRS,
    capacity_of,
    first_alarm,
    forecast_points,
    iterations,
    nvml_checks,
    nvml_rows,
    position,
    verdict,
)

from jupyter_gpu_panel.memory.traces import read_records  # noqa: E402
from jupyter_gpu_panel.memory.verdict import nvml_verdicts  # noqa: E402


def nvml_cell(d: Path, m: dict[str, Any]) -> tuple[str, bool]:
    """The pids NVML alone flags, against what the issue expects of it (growth >= 256 MiB, >= 50 samples)."""
    checks = nvml_checks(d, m)
    flagged = ",".join(str(pid) for pid, got, _ in checks if got) or "none"
    expected = ",".join(str(pid) for pid, _, want in checks if want) or "none"
    return f"{flagged} (want {expected})", all(got == want for _, got, want in checks)


def nvml_alarm(d: Path, m: dict[str, Any], pid: int) -> str:
    """When NVML alone first flags ``pid``: seconds after the leak's onset, and how much the
    leak had kept by then (its rate x the iterations since the onset; prefixes every 2 samples)."""
    rows = nvml_rows(d, m)
    its = [r for r in iterations(read_records(d / f"{m['scenario']}.iters.jsonl"), m.get("kind", "step")) if r.get("t")]
    leaking = [r for r in its if position(r) >= (m["onset"] or 0)]
    if not leaking:
        return ""
    onset = leaking[0]["t"]
    for n in range(10, len(rows) + 1, 2):
        got = nvml_verdicts(rows[:n], pid=pid)
        if got and got[0]["actionable"]:
            now = rows[n - 1]["t"]
            kept = m["leak_bytes_per_iter"] * sum(1 for r in leaking if r["t"] <= now)
            return f"+{now - onset:.1f} s, {kept / 2**20:.0f} MiB"
    return "never"


def row(d: Path, m: dict[str, Any]) -> list[str]:
    path = d / f"{m['scenario']}.iters.jsonl"
    recs = read_records(path)
    cap = capacity_of(d, m)
    whole = verdict(recs, cap, path)
    alarm: Optional[int] = first_alarm(recs, cap, path) if m["actionable"] else None
    after = "" if alarm is None or m.get("onset") is None else f"+{alarm - int(m['onset'])}"
    err = ""
    if m.get("oom_at") is not None and alarm is not None:
        at = forecast_points(m, alarm)[0]  # the first alarm (or when a second process arrived)
        at_alarm = verdict([r for r in recs if position(r) <= at and not r.get("oom")], cap, path)
        truth = int(m["oom_at"]) - at
        mark = "" if at == alarm else f" at {at}"
        err = f"{at_alarm['steps_to_oom']:.0f} vs {truth} ({(at_alarm['steps_to_oom'] - truth) / truth:+.0%}){mark}"
    nvml, nvml_ok = nvml_cell(d, m)
    wanted = [pid for pid, _, want in nvml_checks(d, m) if want]
    nvml_when = nvml_alarm(d, m, wanted[0]) if wanted else ""
    ok = whole["actionable"] == bool(m["actionable"]) and nvml_ok
    return [
        f"{d.name}/{m['scenario']}",
        "yes" if m["actionable"] else "no",
        "yes" if whole["actionable"] else "no",
        nvml,
        nvml_when,
        "" if alarm is None else f"{alarm} {after}".strip(),
        err,
        "ok" if ok else "WRONG",
    ]


def main() -> int:
    head = [
        "scenario",
        "truth",
        "steps verdict",
        "NVML alone flags",
        "NVML alarm (leak kept)",
        "first alarm (after onset)",
        "steps to OOM at alarm (error)",
        "",
    ]
    rows = [row(d, m) for d in DIRS if (d / "meta.jsonl").is_file() for m in read_records(d / "meta.jsonl")]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    wrong = sum(r[-1] == "WRONG" for r in rows)
    print(f"{len(rows)} scenarios, {wrong} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
