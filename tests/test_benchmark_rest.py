"""REST endpoint {base_url}api/gpu-panel/benchmarks, through the real extension (conftest enables it)."""

import json

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gpu_panel.benchmarks.paths import candidate_names, normalize_api_path

API = ("api", "gpu-panel", "benchmarks")


async def post(jp_fetch, body):
    return await jp_fetch(*API, method="POST", body=json.dumps(body))


async def post_error(jp_fetch, body, raw=None):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*API, method="POST", body=raw if raw is not None else json.dumps(body))
    return info.value.code, json.loads(info.value.response.body)["message"]


async def test_get_lists_templates(jp_fetch):
    r = await jp_fetch(*API)
    assert r.code == 200
    names = [t["name"] for t in json.loads(r.body)["templates"]]
    assert sorted(names) == ["gpu-benchmark", "gpu-class-lab", "gpu-health-check"]


async def test_post_creates_and_never_overwrites(jp_fetch, jp_root_dir):
    r = await post(jp_fetch, {"template": "gpu-benchmark", "path": ""})
    assert r.code == 201 and json.loads(r.body) == {"path": "gpu-benchmark.ipynb"}
    first = (jp_root_dir / "gpu-benchmark.ipynb").read_bytes()
    nb = nbformat.reads(first.decode(), as_version=4)
    assert nb.metadata.jupyter_gpu_panel.template == "gpu-benchmark"
    assert "results_json = 'gpu-benchmark.results.json'" in nb.cells[2].source
    r = await post(jp_fetch, {"template": "gpu-benchmark"})
    assert json.loads(r.body)["path"] == "gpu-benchmark-1.ipynb"
    assert (jp_root_dir / "gpu-benchmark.ipynb").read_bytes() == first
    nb1 = nbformat.read(jp_root_dir / "gpu-benchmark-1.ipynb", as_version=4)
    assert "results_json = 'gpu-benchmark-1.results.json'" in nb1.cells[2].source


async def test_post_into_folder_and_to_an_existing_file(jp_fetch, jp_root_dir):
    (jp_root_dir / "class").mkdir()
    (jp_root_dir / "class" / "lab.ipynb").write_text("not mine")
    (jp_root_dir / "class" / "lab-1.ipynb").mkdir()  # a folder takes the name too
    r = await post(jp_fetch, {"template": "gpu-class-lab", "path": "class/"})
    assert json.loads(r.body)["path"] == "class/gpu-class-lab.ipynb"
    r = await post(jp_fetch, {"template": "gpu-health-check", "path": "class/lab.ipynb"})
    assert json.loads(r.body)["path"] == "class/lab-2.ipynb"
    assert (jp_root_dir / "class" / "lab.ipynb").read_text() == "not mine"
    assert (
        nbformat.read(jp_root_dir / "class" / "lab-2.ipynb", as_version=4).metadata.jupyter_gpu_panel.template
        == "gpu-health-check"
    )


@pytest.mark.parametrize(
    "body, code",
    [
        ({"template": "rm -rf", "path": ""}, 404),
        ({"template": None}, 404),
        ({"template": "gpu-benchmark", "path": "../escape.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "a/../../escape.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "/etc/passwd.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "/tmp"}, 400),
        ({"template": "gpu-benchmark", "path": "C:/x.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "..\\x.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "~/x.ipynb"}, 400),
        ({"template": "gpu-benchmark", "path": "notes.txt"}, 400),
        ({"template": "gpu-benchmark", "path": 7}, 400),
        ({"template": "gpu-benchmark", "path": "missing/x.ipynb"}, 404),
        (["gpu-benchmark"], 400),
    ],
)
async def test_bad_input_is_refused_with_a_message(jp_fetch, jp_root_dir, body, code):
    got, message = await post_error(jp_fetch, body)
    assert got == code and message
    assert not list(jp_root_dir.parent.glob("escape.ipynb")) and not list(jp_root_dir.rglob("*.ipynb"))


async def test_non_json_body(jp_fetch):
    code, message = await post_error(jp_fetch, None, raw="{not json")
    assert code == 400 and "JSON" in message


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unauthenticated_is_refused(jp_fetch, jp_root_dir, method):
    kwargs = {"body": json.dumps({"template": "gpu-benchmark"})} if method == "POST" else {}
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*API, method=method, headers={"Authorization": ""}, **kwargs)
    assert info.value.code in (401, 403)
    assert not list(jp_root_dir.rglob("*.ipynb"))


def test_path_rules_and_names():
    assert normalize_api_path("a//b/./c.ipynb") == "a/b/c.ipynb"
    assert normalize_api_path(None) == "" and normalize_api_path("/".strip("/")) == ""
    for bad in ("..", "a/..", "/a", "\\\\server\\share", "D:x", "a\x00b"):
        with pytest.raises(ValueError):
            normalize_api_path(bad)
    assert candidate_names("x.ipynb")[:3] == ["x.ipynb", "x-1.ipynb", "x-2.ipynb"]
