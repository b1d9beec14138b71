"""Deprecated: the probe is ``jupyter_gpu_panel.probe`` (``import jupyter_gpu_panel.probe as p;
p.start()``). This old path keeps working for one release, with a DeprecationWarning.

The module replaces itself in ``sys.modules`` with the new package, so ``p.start()``, ``p.stop()``
and the probe's state are the new package's own, not copies that could drift from it.
"""

from __future__ import annotations

import sys
import warnings

from .. import probe as _probe

# stacklevel 2: the warning names the line that imported this path (import frames are skipped)
warnings.warn(
    "jupyter_gpu_panel.memory.probe is deprecated and goes in the next release: "
    "use jupyter_gpu_panel.probe (import jupyter_gpu_panel.probe as p; p.start())",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _probe
