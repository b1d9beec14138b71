"""``jupyter_gpu_panel.probe`` runs inside users' kernels and scripts: it must import nothing of the
server (its modules are the ground floor), and the old path ``jupyter_gpu_panel.memory.probe``
keeps working for one release with a DeprecationWarning.

Each check runs in a fresh interpreter: this test process has the whole server imported already.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import jupyter_gpu_panel.probe as probe_pkg
from jupyter_gpu_panel.probe import protocol

#: What importing one module pulled in, printed as JSON by a fresh interpreter.
IMPORTS_OF = """
import importlib, json, sys
importlib.import_module({module!r})
own = sorted(m for m in sys.modules if m == "jupyter_gpu_panel" or m.startswith("jupyter_gpu_panel."))
heavy = sorted(m for m in ("torch", "numpy", "tornado", "jupyter_server", "psutil") if m in sys.modules)
print(json.dumps({{"own": own, "heavy": heavy}}))
"""
#: The package itself (its ``__init__`` is cheap) and its version file may come along.
ALLOWED = {"jupyter_gpu_panel", "jupyter_gpu_panel._version"}


def imports_of(module: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF.format(module=module)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def outside_probe(own: list[str]) -> list[str]:
    return [m for m in own if m not in ALLOWED and not m.startswith("jupyter_gpu_panel.probe")]


# every module in the folder, found on disk: a new one is covered without touching this list
PROBE_MODULES = ["jupyter_gpu_panel.probe"] + [
    f"jupyter_gpu_panel.probe.{m.name}" for m in pkgutil.iter_modules(probe_pkg.__path__)
]


def test_the_probe_package_has_the_modules_it_is_known_by():
    names = {m.rsplit(".", 1)[-1] for m in PROBE_MODULES}
    assert {"core", "iterations", "clock", "triage", "release", "protocol"} <= names


@pytest.mark.parametrize("module", PROBE_MODULES)
def test_the_probe_imports_nothing_of_the_server(module):
    got = imports_of(module)
    assert outside_probe(got["own"]) == [], f"{module} pulls in the server: {outside_probe(got['own'])}"
    # torch only when a probe starts; numpy, tornado, jupyter_server and psutil never
    assert got["heavy"] == [], f"{module} imports {got['heavy']} at import time"


def test_the_check_sees_a_server_import():
    """The check above can fail: a server module pulls in others outside the probe."""
    got = imports_of("jupyter_gpu_panel.memory.follower")
    assert "jupyter_gpu_panel.memory.follower" in outside_probe(got["own"])


OLD_PATH = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import jupyter_gpu_panel.memory.probe as old
    from jupyter_gpu_panel.memory import protocol as old_protocol
import jupyter_gpu_panel.probe as new
from jupyter_gpu_panel.probe import protocol
print(json.dumps({
    "same": old is new and old.start is new.start and old.Probe is new.Probe,
    "same_protocol": old_protocol is protocol,
    "warnings": [(w.category.__name__, str(w.message), w.filename) for w in caught],
}))
"""


def test_the_old_path_warns_and_is_the_new_package():
    out = subprocess.run([sys.executable, "-c", OLD_PATH], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["same"] and got["same_protocol"]  # one probe state, one set of constants (patchable)
    messages = {m: (cat, filename) for cat, m, filename in got["warnings"]}
    old_probe = next(m for m in messages if "jupyter_gpu_panel.memory.probe" in m)
    assert "use jupyter_gpu_panel.probe" in old_probe
    assert messages[old_probe] == ("DeprecationWarning", "<string>")  # names the user's line, not importlib's
    assert any("jupyter_gpu_panel.memory.protocol" in m for m in messages)


def test_a_script_on_the_old_path_is_told_under_the_default_warning_filters():
    """Python shows a DeprecationWarning by default only when ``__main__`` triggers it: a user's
    script importing the old path sees it, because the warning is attributed to that import."""
    code = "import jupyter_gpu_panel.memory.probe as p; print(callable(p.start))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert "DeprecationWarning" in out.stderr and "jupyter_gpu_panel.probe" in out.stderr


def test_the_code_the_server_runs_in_a_kernel_names_the_new_modules():
    """``LOAD_CODE`` and ``RELEASE_CODE`` run as the panel sends them (no kernel: a stand-in for
    ``get_ipython``), so a moved module fails here rather than in a user's kernel."""
    code = (
        "import sys\n"
        "class Events:\n"
        "    callbacks = {}\n"
        "    def register(self, *a): pass\n"
        "class IPython:\n"
        "    events = Events()\n"
        "get_ipython = IPython\n"
        f"exec({protocol.LOAD_CODE!r})\n"
        f"exec({protocol.RELEASE_CODE!r})\n"
        "print('old path loaded:', 'jupyter_gpu_panel.memory.probe' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "jupyter_gpu_panel.probe" in protocol.LOAD_CODE and "memory" not in protocol.LOAD_CODE
    assert "memory" not in protocol.RELEASE_CODE
    assert protocol.RELEASED_PREFIX in out.stdout  # release_cached ran and answered
    # started, or said why not (no CUDA here): either way the probe module was found and ran
    assert protocol.LOADED_PREFIX in out.stdout or "jupyter-gpu-panel:" in out.stderr, (out.stdout, out.stderr)
    assert "old path loaded: False" in out.stdout


# -- the protocol's keys are spelled once: in protocol.py ---------------------------------------
KEY_PREFIXES = ("META_", "REQUEST_", "RESULT_", "EVENT_", "FRAME_", "RELEASE_", "FILE_", "KIND", "UNIT_", "ACTION_")
KEY_PREFIXES += ("OOM_", "HOLDER_")
RECORD_KEYS = ("INDEX", "TIME", "DT", "DEVICE", "ITER", "OPT", "MOD", "STEPS_PER_ITERATION", "OOM")
RECORD_KEYS += (
    "CELL",
    "EXECUTION_COUNT",
    "CELL_ERROR",
    *(n.upper() for n in protocol.BYTE_FIELDS + protocol.COUNT_FIELDS),
)
#: Files that read the probe's files on the server's side (their reads are checked; what they
#: return is the REST API's shape, whose keys may happen to match a probe key).
SERVER_READERS = (
    "memory/records.py",
    "memory/probe_state.py",
    "memory/cells.py",
    "memory/follower.py",
    "memory/oom.py",
    "memory/triage.py",
    "kernels/probe_owner.py",
    "api/kernels.py",
)


#: Literals that equal a probe key but are another thing's name, each with what it is.
NOT_PROBE_KEYS = {
    ("probe/core.py", "num_ooms"): "torch's memory_stats key, which the record's field copies by name",
    ("memory/cells.py", "cell"): "the REST API's CellLeak field (analyze_cells' own output)",
    ("api/kernels.py", "steps"): "the REST API's triage view (request_triage's return)",
    ("memory/oom.py", "oom"): "the REST API's StepsVerdict field (mark_oom's output)",
}


def protocol_keys() -> set[str]:
    names = [n for n in vars(protocol) if n.startswith(KEY_PREFIXES) or n in RECORD_KEYS]
    keys = {getattr(protocol, n) for n in names if isinstance(getattr(protocol, n), str)}
    assert {"i", "t", "dt", "allocated", "oom", "device", "started", "steps", "unit", "filename"} <= keys
    return keys


def string_args(tree: ast.AST, reads_only: bool) -> list[tuple[int, str]]:
    """String literals used as a key: ``x["k"]``, ``x.get("k")``, and (``reads_only`` False)
    ``{"k": ...}`` and any other plain string (docstrings aside)."""
    found = []
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    names = set()  # attribute names (getattr) and module names (sys.modules): Python's, not keys
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            names.update(id(arg) for arg in node.args[1:2])
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "sys.modules.get":
            names.update(id(arg) for arg in node.args[:1])
    for node in ast.walk(tree):
        if id(node) in names or (isinstance(node, ast.Call) and id(node.args[0] if node.args else None) in names):
            continue
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            found.append((node.lineno, node.slice.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append((node.lineno, node.args[0].value))
        elif not reads_only and isinstance(node, ast.Constant) and id(node) not in docstrings:
            found.append((node.lineno, node.value))
    return [(line, v) for line, v in found if isinstance(v, str)]


def test_no_probe_key_is_spelled_outside_protocol():
    """The probe writes, and the server reads, every file name and key through ``protocol``: a
    renamed key cannot drift apart on one side. The probe's modules hold no key literal at all;
    the server's readers read none."""
    keys = protocol_keys()
    root = Path(probe_pkg.__file__).parent.parent
    probe_files = [p for p in (root / "probe").glob("*.py") if p.name != "protocol.py"]
    spelled = []
    for path, reads_only in [(p, False) for p in probe_files] + [(root / f, True) for f in SERVER_READERS]:
        for line, value in string_args(ast.parse(path.read_text()), reads_only):
            if value in keys and (str(path.relative_to(root)), value) not in NOT_PROBE_KEYS:
                spelled.append(f"{path.relative_to(root)}:{line} {value!r}")
    assert spelled == []


def test_the_key_check_sees_a_literal():
    tree = ast.parse('rec = {"allocated": 1}\nrec["t"]\nrec.get("steps")\ngetattr(rec, "device")\n')
    assert {v for _, v in string_args(tree, False)} & protocol_keys() == {"allocated", "t", "steps"}
    assert {v for _, v in string_args(tree, True)} & protocol_keys() == {"t", "steps"}
