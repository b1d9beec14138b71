"""The in-kernel memory probe: one line of allocator readings after every optimizer step.

``%load_ext jupyter_gpu_panel`` in a notebook, or ``import jupyter_gpu_panel.probe as p;
p.start()`` in a script (torchrun included: each rank writes its own file). torch's global
optimizer-step hook calls us after every ``optimizer.step()`` of any optimizer, so the training
loop needs no change, and every reading is taken at the same point of the iteration: boundary
readings are deterministic, which is what makes a 512 B/step slope measurable.

Records use the ``*.iters.jsonl`` format of the project's recorded traces, plus the fields
``protocol`` names: ``limit`` (device total x per-process memory fraction, re-read at every
record, so a later ``set_per_process_memory_fraction`` is seen), ``free`` (the device's free
memory now, ``cudaMemGetInfo``, at most every ``protocol.FREE_SECONDS``: other processes on the
card shrink it), ``device``, ``kind``, ``iter``, ``opt``/``mod`` and ``steps_per_iteration``.

Iterations, not optimizer calls. The step hook receives the optimizer that stepped; each gets
a small stable id (``opt``) in the order first seen. An iteration ends when an optimizer that
already stepped in it steps again: a GAN's ``D.step(); G.step()`` or a second optimizer for
a head are one iteration, and a head's optimizer that steps every other iteration joins the
iteration it stepped in. (A module forward pre-hook would tell iterations apart too, but a
global one puts every module call of the model on torch's slow path.) ``iter`` counts
iterations; the verdict reads one record per iteration (its first), so slope, delay and
forecast are per iteration.

Loops without an optimizer (inference, eval, generation in a cell). The first top-level
``nn.Module`` calls after the probe starts, and after every cell starts, are found by a global
forward pre-hook that stays on only until one module is called a second time (one iteration
of the loop, a few dozen module calls), then removes itself. The modules found get a plain
forward hook: at the end of each of their calls, when no optimizer has stepped for a while
(``protocol.IDLE_OPTIMIZER_SECONDS``, or 3x the steps' own interval), a ``kind: forward``
record is written at the first call of each iteration (at most every
``protocol.MIN_FORWARD_RECORD_SECONDS``). While a training loop runs, that hook only compares
two clock readings. Code that runs neither (a loop of plain tensor operations) is read by the
probe's clock once a second (``clock``).

They go to ``<jupyter runtime dir>/gpu-panel/probe-<pid>.iters.jsonl`` (directory 0700, files 0600,
rotated at ``max_bytes``) beside ``probe-<pid>.json`` (who wrote it), where the server
finds them. Nothing here synchronises the GPU: the allocator counters are host-side, and
``cudaMemGetInfo`` queries the driver without waiting for the GPU.

Triage: when the server writes ``probe-<pid>.triage-request`` (on a leak alarm, or the panel's
"Find the leaking line"), the hook notices it within a second, records torch's allocation
history for the next few iterations and writes what it saw to ``probe-<pid>.triage.json``
(the allocations with their Python stacks, and each stack line's code, which only this process
can read: notebook cells live in its linecache). The server names the stack that survives.

OOM: when a CUDA allocation fails and the failure ends a cell (or the script), an ``oom`` record
says what was asked, what was allocated, reserved and allowed, and which lines' tensors held
the memory (``oom``, ``holders``).

This package is everything that runs inside the user's process (``core``, ``iterations``,
``clock``, ``triage``, ``oom``, ``state``, ``holders``, ``release``, ``torch_install``) and imports nothing of
the server; ``protocol`` is the contract both sides import. torch is imported only when a probe starts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from . import protocol as P
from .core import DEFAULT_MAX_BYTES, Probe, probe_dir, unavailable_reason
from .grouping import Iterations
from .protocol import ALREADY_LOADED, loaded_reply

__all__ = [
    "DEFAULT_MAX_BYTES",
    "P",
    "Iterations",
    "Probe",
    "load_in_kernel",
    "load_ipython_extension",
    "probe_dir",
    "start",
    "stop",
    "unavailable_reason",
    "unload_ipython_extension",
]

#: The one probe of this process (``start`` is idempotent).
_probe: Optional[Probe] = None


def start(
    directory: Optional[str] = None,
    device: Optional[int] = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    kernel: bool = False,
) -> Optional[Probe]:
    """Start recording after every optimizer step of this process. Idempotent. ``kernel``: its
    runs are a kernel's cells (``load_in_kernel``), whose hook notes an OOM; else a script's
    uncaught OOM is noted at its end."""
    global _probe
    if _probe is not None:
        return _probe
    reason = unavailable_reason()
    if reason:
        print(f"jupyter-gpu-panel: {reason}", file=sys.stderr)
        return None
    probe = Probe(Path(directory) if directory else None, device, max_bytes)
    probe.open()
    probe.arm_forward_discovery()
    probe.run_starts()  # a script runs from here; a kernel's runs are its cells (load_in_kernel)
    probe.start_clock()
    probe.watch_oom(script=not kernel)
    _probe = probe
    return probe


def stop() -> None:
    global _probe
    if _probe is not None:
        _probe.close()
        _probe = None


def _pre_run_cell(*_: Any) -> None:
    """A cell starts: its loop may run no optimizer (an eval, a generation): find its modules."""
    if _probe is not None:
        _probe.arm_forward_discovery()
        _probe.run_starts()


def _post_run_cell(result: Any) -> None:
    """A cell ended: the allocator's reading after it (an idle kernel's cache, the per-cell
    signal), and the OOM record when it ended with CUDA's out-of-memory error."""
    if _probe is None:
        return
    _probe.run_ends()
    info = getattr(result, "info", None)
    source = getattr(info, "raw_cell", "") or ""
    cell_id = getattr(info, "cell_id", None) or f"src:{hash(source.strip()) & 0xFFFFFFFF:08x}"
    count = getattr(result, "execution_count", None)
    _probe.note_cell_error(getattr(result, "error_in_exec", None), cell_id, count)
    _probe.record_cell(cell_id, count)


def load_in_kernel(ipython: Any) -> None:
    """Start the probe in this kernel and say so (``protocol.LOAD_CODE`` runs this): started,
    already running, or why it cannot run. Safe to call again."""
    if _probe is not None:
        print(f"{ALREADY_LOADED} (cuda:{_probe.device}).")
        return
    probe = start(kernel=True)
    if probe is None:
        return
    probe.run_ends()  # the cell that loads it is no loop of the user's: the next cells are
    if _post_run_cell not in ipython.events.callbacks.get("post_run_cell", []):
        ipython.events.register("post_run_cell", _post_run_cell)
    if _pre_run_cell not in ipython.events.callbacks.get("pre_run_cell", []):
        ipython.events.register("pre_run_cell", _pre_run_cell)
    print(loaded_reply(probe.device))


def load_ipython_extension(ipython: Any) -> None:
    load_in_kernel(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    for event, callback in (("post_run_cell", _post_run_cell), ("pre_run_cell", _pre_run_cell)):
        try:
            ipython.events.unregister(event, callback)
        except ValueError:
            pass
    stop()
