"""The kernel provisioner that places kernels on GPUs: a ``LocalProvisioner`` that, once the
kernel's environment is final, lets the server's placer write ``CUDA_VISIBLE_DEVICES``.

Registered as the ``gpu-panel-provisioner`` entry point (``jupyter_client.kernel_provisioners``).
The panel makes it the default provisioner when nobody chose another; a kernelspec can also
name it in ``metadata.kernel_provisioner``. Outside a server running the panel it is exactly
``LocalProvisioner``.
"""

from __future__ import annotations

from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from .placer import active_placer


class GPUPanelProvisioner(LocalProvisioner):
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        # the base class merges the kernelspec's env into the launch env: only after it can a
        # CUDA_VISIBLE_DEVICES set by the kernelspec be seen (and left alone)
        kwargs = await super().pre_launch(**kwargs)
        placer = active_placer()
        if placer is not None:
            await placer.place(self.kernel_id, kwargs["env"])
        return kwargs

    async def post_launch(self, **kwargs: Any) -> None:
        await super().post_launch(**kwargs)
        placer = active_placer()
        if placer is not None:
            placer.launched(self.kernel_id, self.pid)

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        placer = active_placer()
        if placer is not None and not restart:
            placer.forget(self.kernel_id)
