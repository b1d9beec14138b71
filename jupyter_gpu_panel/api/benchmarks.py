"""REST endpoint for one-click benchmark notebooks.

``GET  {base_url}api/gpu-panel/benchmarks`` -> ``{"templates": [{"name", "title", "description"}]}``
``POST {base_url}api/gpu-panel/benchmarks`` with ``{"template": name, "path": dir-or-file}`` creates the
notebook through the contents manager (so it works with any contents backend), never overwriting, and
answers 201 ``{"path": created path}``. Bad input gets 400/404 with ``{"message": ...}``.
"""

from __future__ import annotations

import posixpath

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_escape, url_path_join
from tornado import web

from ..benchmarks.notebook import build_notebook
from ..benchmarks.paths import check_notebook_name, first_free, normalize_api_path, results_name
from ..benchmarks.templates import TEMPLATES, list_templates
from .base import BaseHandler


class BenchmarksHandler(BaseHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"templates": list_templates()})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        name = body.get("template")
        if not isinstance(name, str) or name not in TEMPLATES:
            raise web.HTTPError(404, f"unknown template {str(name)[:40]!r}; known: {', '.join(TEMPLATES)}")
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
        try:  # the numbered names always fit: only a requested name, free, can be too long
            check_notebook_name(posixpath.basename(target))
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        nb = build_notebook(name, results_json=results_name(posixpath.basename(target)))
        model = await ensure_async(cm.save({"type": "notebook", "format": "json", "content": nb}, target))
        # a header is Latin-1: a folder named 实验 must reach it percent-encoded
        self.set_header("Location", url_path_join(self.base_url, "api", "contents", url_escape(model["path"])))
        self.write_json({"path": model["path"]}, status=201)
