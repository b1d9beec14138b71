"""The fake NVML inside a server that a test starts as a subprocess (a hub's single-user servers,
the servers Prometheus scrapes): with this folder on PYTHONPATH and ``GPU_PANEL_FAKE_NVML`` set to
a JSON file, ``import pynvml`` gives the fake, configured by that file and re-read when it changes:

    {"gpus": 8, "processes": {"0": [[pid, bytes], ...]}}

The test writes real pids there (a kernel's, another user's process), as NVML would list them.
Only the NVML boundary is faked; without the variable nothing changes.
"""

import json
import os
import sys
from pathlib import Path

_CONFIG = os.environ.get("GPU_PANEL_FAKE_NVML")

if _CONFIG:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fake_nvml
    from fake_nvml import FakeNVML

    class FileConfiguredNVML(FakeNVML):
        def __init__(self, path: str) -> None:
            self._path = Path(path)
            self._mtime = None
            doc = json.loads(self._path.read_text())
            super().__init__(gpus=int(doc.get("gpus", 1)))
            self._reload()

        def _reload(self) -> None:
            try:
                mtime = self._path.stat().st_mtime_ns
            except OSError:
                return
            if mtime == self._mtime:
                return
            self._mtime = mtime
            doc = json.loads(self._path.read_text())
            self.processes = {int(k): [tuple(p) for p in v] for k, v in (doc.get("processes") or {}).items()}

        def nvmlDeviceGetComputeRunningProcesses(self, h):
            self._reload()
            return super().nvmlDeviceGetComputeRunningProcesses(h)

    sys.modules["pynvml"] = FileConfiguredNVML(_CONFIG)
