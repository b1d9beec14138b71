"""Replay recorded NVML traces (``*.nvml.jsonl``) tick by tick through ``TickJudge`` (tests only)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

from jupyter_gpu_panel.memory.tick_growth import TickJudge

ROOT = Path(__file__).resolve().parent / "data"
TRACE_DIRS = [ROOT / "traces" / "h100", ROOT / "traces" / "h100-mlp", ROOT / "leaks" / "h100-extra",
              ROOT / "leaks" / "h200-round2"]  # fmt: skip


def scenarios() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for d in TRACE_DIRS:
        for line in (d / "meta.jsonl").read_text().splitlines():
            if line.strip():
                meta = json.loads(line)
                if (d / f"{meta['scenario']}.nvml.jsonl").exists():
                    out.append((d, meta))
    return out


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def snapshot(row: dict[str, Any]) -> SimpleNamespace:
    procs = [SimpleNamespace(pid=p["pid"], used=p.get("used")) for p in row.get("procs") or []]
    gpu = SimpleNamespace(index=0, state="ok", mem_total=row.get("mem_total"), mem_used=row.get("mem_used"),
                          processes=procs)  # fmt: skip
    return SimpleNamespace(t=row["t"], gpus=[gpu])


def onset_time(d: Path, meta: dict[str, Any]) -> Optional[float]:
    """Unix time of the leak's onset step, from the probe's records beside the trace."""
    if meta.get("onset") is None:
        return None
    for rec in rows(d / f"{meta['scenario']}.iters.jsonl"):
        step = rec.get("iter", rec.get("i"))
        if step is not None and step >= meta["onset"]:
            return float(rec["t"])
    return None


def replay(d: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """First alarm (seconds after the onset, or after the trace start for healthy runs) on any
    process, and on the meta's pid; alarms on other pids are listed."""
    judge = TickJudge()
    first: dict[int, float] = {}
    trace = rows(d / f"{meta['scenario']}.nvml.jsonl")
    for row in trace:
        judge.on_tick(snapshot(row))
        for p in row.get("procs") or []:
            if p["pid"] not in first and judge.verdict_for([p["pid"]]) is not None:
                first[p["pid"]] = row["t"]
    start = onset_time(d, meta) or trace[0]["t"]
    return {"first": {pid: t - start for pid, t in first.items()}, "pid": meta.get("pid"),
            "duration": trace[-1]["t"] - start}  # fmt: skip


if __name__ == "__main__":
    for d, meta in scenarios():
        r = replay(d, meta)
        print(f"{d.name:14} {meta['scenario']:24} leak={meta['leak']!s:5} {r}")
