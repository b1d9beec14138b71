"""Every route of ours is behind Jupyter's authentication (the extension template's check_auth idea)."""

import subprocess
import sys
import textwrap


def test_server_with_unauthenticated_access_forbidden_raises_no_auth_warning(tmp_path):
    script = textwrap.dedent(
        """
        import warnings
        from jupyter_server.serverapp import ServerApp
        from jupyter_server.utils import JupyterServerAuthWarning

        warnings.simplefilter("always", JupyterServerAuthWarning)
        app = ServerApp()
        with warnings.catch_warnings(record=True) as caught:
          warnings.simplefilter("always", JupyterServerAuthWarning)
          app.initialize([
            "--ServerApp.allow_unauthenticated_access=False",
            "--ServerApp.jpserver_extensions={'jupyter_gpu_panel': True}",
            "--GPUPanel.source=replay",
            f"--ServerApp.root_dir={ROOT!r}",
            "--ServerApp.port=0",
          ])
        # other installed extensions may have their own unguarded endpoints; ours must have none
        for w in caught:
            if issubclass(w.category, JupyterServerAuthWarning):
                for line in str(w.message).splitlines():
                    if "gpu-panel" in line or "gpu_panel" in line:
                        print("UNGUARDED", line)
        ours = [spec for spec in app.web_app.default_router.rules[0].target.rules
                if "gpu-panel" in str(getattr(spec.matcher, "regex", "").pattern)]
        print("routes", len(ours))
        ext = app.extension_manager.extension_points["jupyter_gpu_panel"].app
        ext.sampler.stop()
        """
    ).replace("ROOT", repr(str(tmp_path)))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
        env=_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "UNGUARDED" not in proc.stdout, proc.stdout
    n = int(proc.stdout.split("routes")[1].split()[0])
    assert (
        n >= 9
    )  # status, devices, snapshot, history, openapi, stream, kernels, kernel actions, probe triage, benchmarks


def _env(tmp_path):
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env
