"""The one contract between the in-kernel probe (writer) and the server (reader).

File names in the probe directory, the fields of every record with their types and ranges,
the step marker the triage cuts the allocation history at, the code the server runs in a
kernel to load the probe and how the kernel answers. Both sides import it from here, so a
renamed field or a reworded reply cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

#: The probe directory's name inside the Jupyter runtime dir (mode 0700, owned by the user).
PROBE_DIR_NAME = "gpu-panel"

#: The probe's files (the ``kind`` of ``probe_file``).
FILE_META = "meta"  # who wrote the files (one JSON object, rewritten at start: META_* keys)
FILE_ITERS = "iters"  # one record per optimizer step (or top-level forward, see KIND)
FILE_CELLS = "cells"  # one record per executed cell
FILE_TRIAGE_REQUEST = "triage-request"  # written by the server: record the next steps (REQUEST_*)
FILE_TRIAGE = "triage"  # written by the probe: the allocation history it saw (RESULT_*)
#: file kind -> file name suffix of ``probe-<pid>.<suffix>``.
FILE_SUFFIXES: dict[str, str] = {
    FILE_META: "json",
    FILE_ITERS: "iters.jsonl",
    FILE_CELLS: "cells.jsonl",
    FILE_TRIAGE_REQUEST: "triage-request",
    FILE_TRIAGE: "triage.json",
}


def probe_file(directory: Path, pid: int, kind: str) -> Path:
    return directory / f"probe-{pid}.{FILE_SUFFIXES[kind]}"


def pid_of_meta_name(name: str) -> Optional[int]:
    """``probe-123.json`` -> 123; None for any other name."""
    if not (name.startswith("probe-") and name.endswith(".json")):
        return None
    digits = name[len("probe-") : -len(".json")]
    if not digits.isdigit() or len(digits) > 10:
        return None
    return int(digits)


# -- limits of what the server reads (a runtime dir is writable by code the user runs) ------
#: The meta file and a triage request are small JSON objects.
MAX_META_BYTES = 64 * 1024
#: A triage result holds a few steps of allocation history.
MAX_TRIAGE_BYTES = 64 * 1024 * 1024
#: One record line; a longer one (or an unterminated tail past it) is dropped, not kept.
MAX_LINE_BYTES = 64 * 1024
#: New bytes read from one file per poll; the rest waits for the next poll.
MAX_READ_BYTES = 8 * 1024 * 1024

# -- record fields -----------------------------------------------------------------------------
#: Every step record (``*.iters.jsonl``): its index among the file's records (0, 1, ...), the Unix
#: time of the reading, and seconds since the previous record of its kind (null for the first).
INDEX = "i"
TIME = "t"
DT = "dt"
#: The CUDA device the readings are of (step records and the meta).
DEVICE = "device"
#: The allocator's byte counters (``torch.cuda.memory_stats``: current, and the peak).
ALLOCATED = "allocated"
RESERVED = "reserved"
ACTIVE = "active"
INACTIVE_SPLIT = "inactive_split"
PEAK_ALLOCATED = "peak_allocated"
#: What this process may allocate now (card total x per-process fraction, re-read at every
#: record; also in the meta, as at start).
LIMIT = "limit"
#: The device's free memory now (``cudaMemGetInfo``: every process's use counted), read at most
#: every ``FREE_SECONDS``.
FREE = "free"
#: Integer byte counters of a step or cell record (non-negative, below 2**63).
BYTE_FIELDS = (ALLOCATED, RESERVED, ACTIVE, INACTIVE_SPLIT, PEAK_ALLOCATED, LIMIT, FREE)
#: Non-negative integer counters.
ALLOC_RETRIES = "alloc_retries"
NUM_OOMS = "num_ooms"
COUNT_FIELDS = (ALLOC_RETRIES, NUM_OOMS)
#: ``{"i": n, "oom": true}``: the line a step that ran out of memory leaves (recorded traces); no reading.
OOM = "oom"
#: The probe's OOM record (``oom`` true, written when a CUDA allocation failed and the failure
#: ended a cell or the script, or no iteration came after it) keeps ``i``, ``t``, ``kind`` and
#: ``iter`` (the iteration it failed in), the byte fields it could read (``allocated``, ``reserved``,
#: ``limit``, ``free``), ``cell`` and ``execution_count`` in a kernel, and: torch's message (recorded
#: traces carry it too), the bytes asked for, how the probe learnt of it (``OOM_SOURCES``), the user's
#: line that asked (``OOM_SITE``: ``FRAME_*`` keys and ``HOLDER_CODE``), and the largest holders.
OOM_MESSAGE = "msg"
OOM_REQUESTED = "requested"
OOM_SOURCE = "source"
OOM_SOURCE_OBSERVER = "observer"  # torch's OOM observer (the allocator, before the exception)
OOM_SOURCE_EXCEPTION = "exception"  # the error that ended the cell (or the script)
OOM_SOURCES = (OOM_SOURCE_OBSERVER, OOM_SOURCE_EXCEPTION)
OOM_SITE = "site"
OOM_HOLDERS = "holders"
#: A holder: bytes it keeps on the device, where (``FRAME_FILE``, ``FRAME_LINE``: the user's line;
#: a notebook cell's file is the cell), that line's code, the variable's name when known, how it
#: was found (``HOLDER_HOW_*``: the allocation history's stacks, or the variables of the failed
#: frames), and whether the bytes are a model's (parameters, optimizer state) or an autograd graph's.
HOLDER_BYTES = "held"
HOLDER_CODE = "code"
HOLDER_NAME = "name"
HOLDER_HOW = "how"
HOLDER_HOW_HISTORY = "history"
HOLDER_HOW_VARIABLE = "variable"
HOLDER_HOWS = (HOLDER_HOW_HISTORY, HOLDER_HOW_VARIABLE)
HOLDER_MODEL = "model"
HOLDER_GRAPH = "graph"
#: Holders kept per OOM record, and the longest message and code line kept.
MAX_OOM_HOLDERS = 8
MAX_OOM_MESSAGE = 1000
MAX_OOM_CODE = 200

_SIZE = r"([0-9]+(?:\.[0-9]+)?) ?(B|KiB|MiB|GiB|TiB|bytes)"
_UNITS = {"B": 1, "bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
#: torch's CUDA out-of-memory text (``c10/cuda/CUDACachingAllocator.cpp``), field by field.
_OOM_TEXT = {
    OOM_REQUESTED: r"Tried to allocate " + _SIZE,
    LIMIT: _SIZE + r" allowed",
    ALLOCATED: r"Of the allocated memory " + _SIZE + r" is allocated by PyTorch",
    "unallocated": r"and " + _SIZE + r" is reserved by PyTorch but unallocated",
    FREE: r"of which " + _SIZE + r" is free",
}


def oom_numbers(message: object) -> dict[str, int]:
    """The byte counts torch's OOM message states (``requested``, ``limit`` when a memory fraction
    is set, ``allocated``, ``reserved``, ``free``), rounded as torch printed them; {} for other text."""
    import re

    if not isinstance(message, str):
        return {}
    found: dict[str, int] = {}
    for key, pattern in _OOM_TEXT.items():
        m = re.search(pattern, message[:4096])
        if m:
            found[key] = int(float(m.group(1)) * _UNITS[m.group(2)])
    unallocated = found.pop("unallocated", None)
    if unallocated is not None and ALLOCATED in found:
        found[RESERVED] = found[ALLOCATED] + unallocated
    return found


def is_cuda_oom(error: object) -> bool:
    """Whether ``error`` is CUDA's out-of-memory error (``torch.OutOfMemoryError``, or the
    ``RuntimeError`` older torch raised with the same text)."""
    if not isinstance(error, BaseException):
        return False
    name = type(error).__name__
    return name == "OutOfMemoryError" or (isinstance(error, RuntimeError) and "CUDA out of memory" in str(error)[:200])


#: A cell record (``*.cells.jsonl``, one per executed cell, plus the byte counters above): the
#: cell's id, its execution count, and (recorded traces only) whether it raised.
CELL = "cell"
EXECUTION_COUNT = "execution_count"
CELL_ERROR = "error"

#: The meta file (``probe-<pid>.json``): who wrote the files. ``pid`` must be the one in the file
#: name; ``device`` and ``limit`` as in the records; ``started`` the probe's start (Unix time);
#: ``torch`` its version; ``argv`` the first words of the command line; ``rank`` torchrun's.
META_PID = "pid"
META_KERNEL_ID = "kernel_id"
META_DEVICE = DEVICE
META_LIMIT = LIMIT
META_STARTED = "started"
META_TORCH = "torch"
META_ARGV = "argv"
META_RANK = "rank"

#: What wrote a record: an optimizer step (the global step post-hook), the end of a
#: top-level ``nn.Module`` call in a loop without an optimizer (inference, eval, generation),
#: or the probe's clock in code that runs neither (a loop of plain tensor operations).
#: A record without ``kind`` is an optimizer step (recorded traces, probes before round 2).
KIND = "kind"
KIND_STEP = "step"
KIND_FORWARD = "forward"
#: The probe's clock (``probe/clock.py``). Files say ``"time"``, as they have since the clock came.
KIND_CLOCK = "time"
KINDS = (KIND_STEP, KIND_FORWARD, KIND_CLOCK)
#: Iteration index of the record, per kind: it advances when a source (an optimizer, a
#: top-level module) that already fired in the current iteration fires again, so a GAN's
#: G and D steps, or a second optimizer for a head, make one iteration.
ITER = "iter"
#: Small stable id (0, 1, ...) of the optimizer (``kind`` step) or top-level module
#: (``kind`` forward) that fired, in the order the probe first saw them.
OPT = "opt"
MOD = "mod"
#: Hook calls of the previous complete iteration (optimizer steps, or top-level module calls).
STEPS_PER_ITERATION = "steps_per_iteration"
#: Largest source id / calls per iteration accepted.
MAX_SOURCES = 2**16
#: Seconds between two ``cudaMemGetInfo`` reads (a driver call: cheap, but not free).
FREE_SECONDS = 0.05
#: Largest byte count accepted (16 EiB would overflow int64 consumers).
MAX_BYTES_VALUE = 2**62
#: Largest step index or device index accepted.
MAX_INDEX = 2**53

# -- triage --------------------------------------------------------------------------------
#: Steps of allocation history recorded for a triage, unless the request says otherwise (the
#: least recorded: a leak every step shows in 4).
TRIAGE_STEPS = 4
#: The most steps one triage records: a leak every 25th step needs 2 x 25 + 1 to show twice.
TRIAGE_MAX_STEPS = 128
#: The longest a triage records (torch's history with Python stacks slows every allocation).
TRIAGE_MAX_SECONDS = 60.0
#: Growth increments a triage waits for: a leak's line survives from two, what the last step
#: still references from one.
TRIAGE_INCREMENTS = 2
#: Events of torch's history kept (its ring buffer drops the oldest past this: the recording
#: stops before, estimated from the allocator's allocation and free counts).
TRIAGE_MAX_ENTRIES = 200_000
#: What one recorded step of a triage is (``unit`` in ``triage.json``): a loop's iteration, or
#: a second of the probe's clock (code with no optimizer step and no module call).
UNIT_STEP = "step"
UNIT_SECOND = "second"
TRIAGE_UNITS = (UNIT_STEP, UNIT_SECOND)
#: The triage request (``probe-<pid>.triage-request``, written by the server): how many steps to
#: record, and when it was asked.
REQUEST_STEPS = "steps"
REQUEST_TIME = TIME
#: Optional, from the verdict: the bytes one growth increment adds (a leak every N steps adds
#: N x its bytes a step at once), the steps between increments, the most steps and seconds to
#: record. With ``increment`` the probe records past ``steps`` until it saw ``TRIAGE_INCREMENTS``
#: of them and one step more (so the last step's transients are not the last increment).
REQUEST_INCREMENT = "increment"
REQUEST_PERIOD = "period"
REQUEST_MAX_STEPS = "max_steps"
REQUEST_MAX_SECONDS = "max_seconds"
#: The triage result (``probe-<pid>.triage.json``, written by the probe): when, by whom, the steps
#: recorded and their unit, then either ``error`` or torch's allocation history of the device
#: (``device_traces``: one list of events) with ``code``, each stack line's source by
#: ``code_key`` (only the probe's process can read notebook cells: they live in its linecache).
RESULT_TIME = TIME
RESULT_PID = META_PID
RESULT_DEVICE = DEVICE
RESULT_STEPS = REQUEST_STEPS
RESULT_UNIT = "unit"
RESULT_ERROR = "error"
RESULT_TRACES = "device_traces"
RESULT_CODE = "code"
#: How the recording went: the allocated bytes at each step boundary (the first before the
#: first step), the increments the probe counted in them, the seconds it took, the period asked,
#: and why it stopped (``STOP_*``: the increments were seen, or which bound ended it).
RESULT_ALLOCATED = "allocated"
RESULT_INCREMENTS = "increments"
RESULT_SECONDS = "seconds"
RESULT_PERIOD = REQUEST_PERIOD
RESULT_STOPPED = "stopped"
STOP_INCREMENTS = "increments"  # two increments and one step past the second
STOP_STEPS = "steps"  # the steps asked, with no increment size to wait for
STOP_MAX_STEPS = "max_steps"  # the bound on steps, before two increments
STOP_SECONDS = "seconds"  # the bound on time
STOP_ENTRIES = "entries"  # the bound on the history's size
STOP_REASONS = (STOP_INCREMENTS, STOP_STEPS, STOP_MAX_STEPS, STOP_SECONDS, STOP_ENTRIES)
#: An event of the history and a frame of its stack, keyed as torch's ``_snapshot()`` keys them
#: (the probe keeps torch's names, so the server reads a probe's history and torch's alike).
EVENT_ACTION = "action"
EVENT_ADDR = "addr"
EVENT_SIZE = "size"
EVENT_FRAMES = "frames"
ACTION_ALLOC = "alloc"
FREE_ACTIONS = ("free_requested", "free_completed", "free")
FRAME_FILE = "filename"
FRAME_LINE = "line"
FRAME_NAME = "name"


def code_key(filename: object, line: object) -> str:
    """The key of a stack line's source in a triage result's ``code``."""
    return f"{filename}:{line}"


#: The probe allocates (and frees) one tiny tensor from this function at every step boundary
#: while it records, so the server can cut the history into steps exactly.
STEP_MARKER = "_triage_step_marker"
#: Frames in these files are torch's, a library's or Python's own: never the user's line.
LIBRARY_FRAMES = ("/torch/", "\\torch\\", "<frozen", "/site-packages/", "/dist-packages/", "/lib/python3")
#: torch's ``nn.Module.__call__`` machinery: the user's line is the call site just outside the
#: outermost module call of a stack (``fake = G(z)``), not a line inside a model's forward.
MODULE_CALL_FILE = "torch/nn/modules/module.py"
MODULE_CALL_NAMES = ("_call_impl", "_wrapped_call_impl", "__call__")
#: Frames the probe keeps per allocation: the innermost few, every user frame and module call
#: boundary, up to this many (a deep model nests dozens of torch frames above the user's line).
TRIAGE_INNER_FRAMES = 4
TRIAGE_MAX_FRAMES = 48

# -- loading the probe in a kernel ----------------------------------------------------------
#: Runs in the kernel without touching its namespace or history; prints one of the replies below.
LOAD_CODE = "__import__('jupyter_gpu_panel.probe', fromlist=['_']).load_in_kernel(get_ipython())"
#: The kernel prints this (then the device) when the probe started.
LOADED_PREFIX = "jupyter-gpu-panel: tracking GPU memory"
#: ... and this when it already runs in that kernel.
ALREADY_LOADED = "jupyter-gpu-panel: already tracking GPU memory"


def loaded_reply(device: int) -> str:
    return f"{LOADED_PREFIX} after every optimizer step (cuda:{device})."


#: Recorded by the probe at the end of a top-level module call only after this long without
#: an optimizer step (and 3 x the steps' own interval): a training loop is read at its steps.
IDLE_OPTIMIZER_SECONDS = 2.0
#: The clock's period: while a cell (or a script) has run this long and longer with neither an
#: optimizer step nor a module call recorded, the allocator is read every ``CLOCK_SECONDS``
#: from a thread (``KIND_CLOCK`` records; ``iter`` counts the readings), and the detector judges
#: that series on a time axis.
CLOCK_SECONDS = 1.0
#: Forward records are written at most this often (a token-by-token generation calls its
#: model thousands of times a second); skipped iterations are simply not recorded.
MIN_FORWARD_RECORD_SECONDS = 0.005


def load_succeeded(output: str) -> bool:
    """Whether the kernel's output to ``LOAD_CODE`` says the probe runs (started now or before)."""
    return LOADED_PREFIX in output or ALREADY_LOADED in output


# -- releasing torch's cache in an idle kernel ------------------------------------------------
#: Frees torch's cached GPU memory in the kernel (variables stay); prints one RELEASED_PREFIX line.
RELEASE_CODE = "__import__('jupyter_gpu_panel.probe.release', fromlist=['_']).release_cached()"
RELEASED_PREFIX = "jupyter-gpu-panel: released "
#: The JSON after it: whether torch was imported and had used CUDA, and its reserved (and
#: allocated) bytes summed over the devices, before and after.
RELEASE_TORCH = "torch"
RELEASE_CUDA = "cuda"
RELEASE_RESERVED_BEFORE = "reserved_before"
RELEASE_RESERVED_AFTER = "reserved_after"
RELEASE_ALLOCATED_BEFORE = "allocated"
RELEASE_ALLOCATED_AFTER = "allocated_after"
