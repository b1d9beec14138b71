"""REST endpoint for one-click benchmark notebooks.

``GET  {base_url}api/gpu-panel/benchmarks`` -> ``{"templates": [{"name", "title", "description"}]}``
``POST {base_url}api/gpu-panel/benchmarks`` with ``{"template": name, "path": dir-or-file}`` creates the
notebook through the contents manager (so it works with any contents backend), never overwriting, and
answers 201 ``{"path": created path}``. Bad input gets 400/404 with ``{"message": ...}``.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any, Awaitable, Callable, Optional

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .cli import results_name
from .templates import TEMPLATES, build_notebook, list_templates

AUTH_RESOURCE = "gpu-panel"
#: free-name attempts before giving up (a folder with 1000 copies is a mistake, not a use case)
MAX_SUFFIX = 1000
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_api_path(path: Any) -> str:
    """Validate a client-supplied path relative to the server root; return it without leading/trailing '/'.

    Rejects (ValueError) anything that could leave the root or be read differently by another contents
    backend: absolute paths, Windows drives, backslashes, '..' segments, control characters.
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise ValueError("path must be a string")
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        raise ValueError("path must be relative to the server root")
    if "\\" in path or any(ord(ch) < 32 for ch in path):
        raise ValueError("path contains characters that are not allowed")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError("path must not contain '..'")
    return "/".join(parts)


def candidate_names(filename: str) -> list[str]:
    """foo.ipynb, foo-1.ipynb, foo-2.ipynb, ... in the order they are tried."""
    stem, ext = posixpath.splitext(filename)
    return [filename] + [f"{stem}-{i}{ext}" for i in range(1, MAX_SUFFIX)]


async def first_free(directory: str, filename: str, exists: Callable[[str], Awaitable[bool]]) -> Optional[str]:
    """First candidate name in `directory` for which `exists` is False, or None."""
    for name in candidate_names(filename):
        path = f"{directory}/{name}" if directory else name
        if not await exists(path):
            return path
    return None


class BenchmarksHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps({"templates": list_templates()}))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "request body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "request body must be a JSON object")
        name = body.get("template")
        if not isinstance(name, str) or name not in TEMPLATES:
            raise web.HTTPError(404, f"unknown template {name!r}; known: {', '.join(TEMPLATES)}")
        try:
            path = normalize_api_path(body.get("path", ""))
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None

        cm = self.contents_manager

        async def exists(p: str) -> bool:
            return bool(await ensure_async(cm.file_exists(p)) or await ensure_async(cm.dir_exists(p)))

        if path == "" or await ensure_async(cm.dir_exists(path)):
            directory, filename = path, TEMPLATES[name].filename
        else:
            directory, filename = posixpath.split(path)
            if not filename.endswith(".ipynb"):
                raise web.HTTPError(400, "path must be a folder or end with .ipynb")
            if directory and not await ensure_async(cm.dir_exists(directory)):
                raise web.HTTPError(404, f"folder {directory!r} does not exist")
        if await ensure_async(cm.is_hidden(directory)) if directory else False:
            raise web.HTTPError(400, "hidden folders are not allowed")
        target = await first_free(directory, filename, exists)
        if target is None:
            raise web.HTTPError(409, f"no free name for {filename!r} in {directory or 'the root'!r}")
        nb = build_notebook(name, results_json=results_name(posixpath.basename(target)))
        model = await ensure_async(cm.save({"type": "notebook", "format": "json", "content": nb}, target))
        self.set_status(201)
        self.set_header("Location", url_path_join(self.base_url, "api", "contents", model["path"]))
        self.finish(json.dumps({"path": model["path"]}))


def routes(base_url: str) -> list[tuple[str, Any]]:
    """Tornado routes for the benchmark endpoint under `base_url`."""
    return [(url_path_join(base_url, "api/gpu-panel/benchmarks"), BenchmarksHandler)]
