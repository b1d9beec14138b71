import sys
from pathlib import Path

import pytest

from needs import REQUIRE_ALL, REQUIRE_ALL_HINT

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a source checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

# real GPU recordings, copied byte for byte into the repository (tests/data/traces/README.md)
TRACES = ROOT / "tests" / "data" / "traces"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``GPU_PANEL_REQUIRE_ALL=1`` (CI) a skipped test is a failed one, whatever skipped it.

    A stranger's machine may lack Chromium or root and skips those tests with the reason; CI has
    everything, so a skip there means a test silently did not run.
    """
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under {REQUIRE_ALL_HINT}: {reason}"


@pytest.fixture
def fake_gpus():
    """How many GPUs the fake NVML answers with (override in a module)."""
    return 1


@pytest.fixture
def fake(monkeypatch, fake_gpus):
    """The fake ``pynvml`` (the NVML boundary, nothing else), answering like the recorded H100."""
    from fake_nvml import FakeNVML

    nvml = FakeNVML(gpus=fake_gpus)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    return nvml


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


@pytest.fixture
def jp_fetch(jp_fetch):
    """pytest-jupyter's ``jp_fetch``, checking every answer of ours against ``openapi.json``.

    Every response under ``/api/gpu-panel/`` (a 4xx raised as ``HTTPClientError`` too) must be
    one the contract documents, so each test of the API checks the contract as well. A 404
    for a path that is no route of ours (``api/gpu-panel/nope``) has nothing to match.
    """
    from tornado.httpclient import HTTPClientError

    from contract import UndocumentedRoute, api_path, validate_response

    def check(method, response):
        url = response.effective_url or response.request.url
        if api_path(url) is None:
            return
        try:
            validate_response(method, url, response.code, dict(response.headers), response.body)
        except UndocumentedRoute:
            if response.code != 404:
                raise

    async def fetch(*parts, **kwargs):
        method = kwargs.get("method", "GET")
        try:
            response = await jp_fetch(*parts, **kwargs)
        except HTTPClientError as err:
            if err.response is not None:
                check(method, err.response)
            raise
        check(method, response)
        return response

    return fetch
