"""Deprecated: the probe's protocol is ``jupyter_gpu_panel.probe.protocol``. This old path keeps
working for one release, with a DeprecationWarning.

The module replaces itself in ``sys.modules`` with the new one, so a constant read (or patched)
through either name is the same object.
"""

from __future__ import annotations

import sys
import warnings

from ..probe import protocol as _protocol

# stacklevel 2: the warning names the line that imported this path (import frames are skipped)
warnings.warn(
    "jupyter_gpu_panel.memory.protocol is deprecated and goes in the next release: "
    "use jupyter_gpu_panel.probe.protocol",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _protocol
