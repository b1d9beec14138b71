import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a source checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
TRACES = SHARED / "traces"


@pytest.fixture
def gpu_panel_config():
    """Override in a test module to change ``c.GPUPanel``."""
    return {"source": "replay", "interval": 0.1, "slow_interval": 0.5}


@pytest.fixture
def jp_server_config(gpu_panel_config):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_gpu_panel": True}},
        "GPUPanel": gpu_panel_config,
    }


@pytest.fixture
def panel(jp_serverapp):
    """The running GPUPanel extension of the test server."""
    return jp_serverapp.extension_manager.extension_points["jupyter_gpu_panel"].app
