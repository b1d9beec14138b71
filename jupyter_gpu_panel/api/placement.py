"""``GET placement`` and the ``{"gpus": [..]}`` of ``POST kernels/{id}/restart`` (Restart on GPU N)."""

from __future__ import annotations

from typing import Optional

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..kernels.placer import PROVISIONER_NAME
from .base import BaseHandler


class PlacementHandler(BaseHandler):
    """The policy, the GPU(s) the next kernel would get and why, and each GPU as placement sees it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.panel.placer.preview())


def restart_gpus(handler: BaseHandler, kernel_id: str) -> Optional[list[int]]:
    """The GPUs a restart request asks for (None: a plain restart), checked and handed to the
    placer for the kernel's next start; 400 or 409 naming the problem."""
    if not handler.request.body:
        return None
    body = handler.json_body()
    if "gpus" not in body:
        return None
    placer = handler.panel.placer
    try:
        gpus = placer.check(body["gpus"])
    except ValueError as err:
        raise web.HTTPError(400, str(err)) from None
    from ..kernels.provisioner import GPUPanelProvisioner

    provisioner = getattr(handler.kernel_manager.get_kernel(kernel_id), "provisioner", None)
    if not isinstance(provisioner, GPUPanelProvisioner):
        # only the panel's provisioner writes the environment of a restart
        name = type(provisioner).__name__ if provisioner is not None else "no"
        raise web.HTTPError(
            409, f"this kernel runs under the {name} provisioner, not {PROVISIONER_NAME}: it cannot be moved"
        )
    record = placer.records.get(kernel_id)
    if record is not None and record["source"] == "outside":
        raise web.HTTPError(
            409,
            f"this kernel's CUDA_VISIBLE_DEVICES={record['cuda_visible_devices']!r} was set outside the panel "
            "(the server's environment, the kernelspec or the spawner): a restart keeps it",
        )
    placer.request(kernel_id, gpus)
    return gpus
