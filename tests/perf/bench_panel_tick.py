"""The panel's per-tick update for 1 and 8 GPUs, in Chromium against a real server.

    python tests/perf/bench_panel_tick.py

Runs the browser measurement (tests/ui/test_perf.py: the fake NVML answering 1, then 8 H100s;
a tick from the stream message's arrival to the DOM and charts drawn) and prints its table from
tests/ui/artifacts/perf-ticks.json. Needs the built front end and Debian's Chromium, as the UI
tests do. Not a test: a table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "tests" / "ui" / "artifacts" / "perf-ticks.json"


def main() -> int:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/ui/test_perf.py", "-q", "-p", "no:cacheprovider"], cwd=ROOT
    )
    if run.returncode != 0 or not ARTIFACT.exists():
        print("the browser measurement failed; see the pytest output above", file=sys.stderr)
        return 1
    print(f"\nthe panel's update per tick (from {ARTIFACT.relative_to(ROOT)})")
    print(json.dumps(json.loads(ARTIFACT.read_text()), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
