"""Triage of a leak every 5th and every 25th step, on a real GPU (issue 19, item 2; needs CUDA).

    PYTHONPATH=. python tests/gpu/triage_period_proof.py "$OUT"          # ~1-2 min

Each period runs in its own process (a fresh caching allocator): a training loop whose
validation, every Nth step, forgets ``torch.no_grad()`` (``val_loss += model(xv).pow(2).mean()``
keeps each validation's autograd graph: the live case of issue 19), with
``jupyter_gpu_panel.probe`` started as a user starts it. This process plays the server: it
follows the probe's files with the server's own follower, judges them with the server's
verdict, and on the first actionable alarm asks the triage as the tracker does
(``request_triage(auto=True)``: the period and increment from the verdict), then reads
``triage.json`` with the server's ``triage_result``.

Writes to OUTDIR: ``triage_period_N.json`` (the alarm, the request, the triage view and the
checks) and ``triage_period_N.raw.json`` (the probe's ``triage.json``, for recorded tests), and
prints each view as JSON. Exits 1 when a check fails: the user's line must be the one named,
with the bytes that survive, and the recording must have stopped on two increments.

The follower needs the package's dependencies (orjson, psutil, jupyter_core); without them the
records are read here and judged by ``memory.verdict`` (numpy, scipy), else by a plain slope
over the readings' floor (``verdict_source`` says which).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LEAK_CODE = "val_loss += model(xv).pow(2).mean()"
PERIODS = (5, 25)
RUN_SECONDS = 150.0


def child(period: int, directory: str) -> None:
    """The user's script: trains, and every ``period``th step validates without no_grad."""
    import torch
    from torch import nn

    import jupyter_gpu_panel.probe as probe_mod

    torch.manual_seed(0)
    probe = probe_mod.start(directory=directory)
    if probe is None:
        raise SystemExit("the probe cannot run here")
    dev = "cuda"
    model = nn.Sequential(nn.Linear(4096, 8192), nn.GELU(), nn.Linear(8192, 4096)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    val_loss = 0.0
    t0 = time.time()
    step = 0
    for step in range(100_000):
        x = torch.randn(512, 4096, device=dev)
        loss = model(x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % period == period - 1:
            xv = torch.randn(256, 4096, device=dev)
            val_loss += model(xv).pow(2).mean()  # LEAK: no torch.no_grad(), the graph is kept
        if probe.triage_path.exists() or time.time() - t0 > RUN_SECONDS:
            break
        time.sleep(0.01)  # a loop of ~60 steps a second: the alarm comes within its first seconds
    probe_mod.stop()
    print(json.dumps({"steps": step + 1, "allocated": torch.cuda.memory_allocated()}))


def simple_leak(records: list[dict]) -> dict | None:
    """A slope over the readings' floor, when the server's verdict cannot be imported here."""
    if len(records) < 60:
        return None
    x = [float(r["allocated"]) for r in records]
    floor = x[:]
    for k in range(len(x) - 2, -1, -1):
        floor[k] = min(floor[k], floor[k + 1])
    half = len(x) // 2
    rate = (floor[-1] - floor[half]) / max(1, len(x) - 1 - half)
    return {"leak": rate > 0, "actionable": rate > 0, "bytes_per_step": rate, "onset_step": None} if rate > 0 else None


def read_records(path: Path) -> list[dict]:
    """The probe's step records so far (a line still being written is left for the next read)."""
    recs = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return [r for r in recs if isinstance(r, dict) and r.get("allocated") is not None]


def judge(recs: list[dict]) -> dict | None:
    """The server's verdict on the records (numpy and scipy suffice), else a plain slope."""
    try:
        from jupyter_gpu_panel.memory.verdict import verdict_from_records
    except ImportError:
        return simple_leak(recs)
    leak = verdict_from_records(recs)
    return leak if leak is not None and leak["actionable"] else None


def follow(period: int, directory: Path, proc: subprocess.Popen) -> dict:
    """The server's part: follow, judge, ask the triage on the first alarm, read the result."""
    from jupyter_gpu_panel.memory.triage import triage_plan, triage_result
    from jupyter_gpu_panel.probe import protocol as P

    try:
        from jupyter_gpu_panel.memory.follower import Probes

        probes, source = Probes(directory), "server verdict (memory.verdict)"
    except ImportError as err:  # no orjson, psutil or jupyter_core here: the verdict on the file's records
        probes, source = None, f"memory.verdict on the records (the follower cannot import: {err})"
    out: dict = {"period": period, "verdict_source": source, "alarm": None, "request": None, "triage": None}
    deadline = time.monotonic() + RUN_SECONDS + 30
    triage_path = directory / f"probe-{proc.pid}.triage.json"
    request_path = directory / f"probe-{proc.pid}.triage-request"
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        if probes is not None:
            probes.poll()
            f = probes.followers.get(proc.pid)
            if f is None:
                continue
            if f.stale:
                f.judge()
            leak = f.leak
            if leak is not None and leak["actionable"] and out["alarm"] is None:
                f.request_triage(auto=True)
        else:
            recs = read_records(directory / f"probe-{proc.pid}.iters.jsonl")
            leak = judge(recs)
            if leak is not None and out["alarm"] is None:
                plan = triage_plan(leak, [r.get("iter", r["i"]) for r in recs], [r["allocated"] for r in recs])
                request_path.write_text(json.dumps({**plan, P.REQUEST_TIME: time.time()}))
        if out["alarm"] is None and request_path.exists():
            out["alarm"] = {k: leak.get(k) for k in ("bytes_per_step", "onset_step", "current_step", "message")}
            out["request"] = json.loads(request_path.read_text())
        if triage_path.exists():
            break
    proc.wait(timeout=60)
    if triage_path.exists():
        out["triage"] = triage_result(json.loads(triage_path.read_text()))
    return out


def checks(view: dict) -> dict:
    t = view.get("triage") or {}
    top = (t.get("stacks") or [{}])[0]
    rec = t.get("recording") or {}
    return {
        "named_the_users_line": LEAK_CODE in (t.get("message") or "") and LEAK_CODE in (top.get("code") or ""),
        "with_surviving_bytes": (top.get("bytes") or 0) > 0,
        "period_in_the_message": f"every {view['period']} steps" in (t.get("message") or ""),
        "stopped_on_two_increments": rec.get("stopped") == "increments" and rec.get("increments") == 2,
    }


def main(outdir: str) -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for period in PERIODS:
        directory = Path(tempfile.mkdtemp(prefix="probe-"))
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(period), str(directory)])
        try:
            view = follow(period, directory, proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        raw = directory / f"probe-{proc.pid}.triage.json"
        if raw.exists():
            shutil.copy(raw, out / f"triage_period_{period}.raw.json")
        view["checks"] = checks(view)
        failed |= not all(view["checks"].values())
        (out / f"triage_period_{period}.json").write_text(json.dumps(view, indent=1))
        print(json.dumps(view, indent=1), flush=True)
        shutil.rmtree(directory, ignore_errors=True)
    print("FAIL" if failed else "OK: every check passed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "triage-period-out"))
