"""What holds the device's memory when an allocation fails: by the user's line.

Two sources, both read inside the process that ran out of memory:

- ``history_holders``: torch's memory snapshot. A block allocated while the allocation history was
  recorded (a triage ran, or the user records it) keeps its Python stack; the live blocks are
  summed by the user's line that allocated them (the call site outside the outermost
  ``nn.Module`` call, as the server's triage names it).
- ``variable_holders``: the variables of the frames the error passed through (a notebook cell's
  frame holds the notebook's namespace). Each variable's device bytes are what it reaches:
  tensors, their gradients and the tensors their autograd graph saved (``val_loss += loss``
  keeps every step's graph), containers, modules, optimizers and plain objects' attributes. A
  storage counts once, for the first variable that reaches it (models first: their parameters
  are no leak). The line is the one of the frame's code that grows or assigns the variable
  (``val_loss += ...``, ``preds.append(...)``), found in its source.

Both are bounded in objects and seconds: they run once, after the allocation failed.
"""

from __future__ import annotations

import ast
import io
import linecache
import time
import tokenize
import types
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Callable, Optional

from . import protocol as P

#: Objects and autograd nodes looked at in one walk, and its seconds.
MAX_OBJECTS = 200_000
MAX_SECONDS = 3.0
#: Attributes of plain objects are followed this deep (``self.cache.items``).
MAX_DEPTH = 3
#: Methods that grow a container in place: the line calling one on a variable grows it.
GROWING_CALLS = ("append", "extend", "insert", "add", "update", "appendleft", "extendleft", "setdefault")


def is_user_file(filename: str) -> bool:
    return bool(filename) and not any(s in filename for s in P.LIBRARY_FRAMES)


def code_of(filename: str, line: int) -> Optional[str]:
    """The line's code, without its comment (the panel shows the code to find it by)."""
    text = linecache.getline(filename, int(line or 0)).strip()
    if "#" in text:
        try:
            for tok in tokenize.generate_tokens(io.StringIO(text).readline):
                if tok.type == tokenize.COMMENT:
                    text = text[: tok.start[1]].rstrip()
                    break
        except (tokenize.TokenError, SyntaxError, IndentationError):
            pass  # an unterminated bracket: the line as written
    return text[: P.MAX_OOM_CODE] or None


def call_site(frames: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The user's line of an allocation's stack (innermost frame first): the first user frame
    outside the outermost ``nn.Module`` call, else the innermost user frame."""
    outer = -1
    for k, fr in enumerate(frames):
        name = str(fr.get(P.FRAME_FILE) or "").replace("\\", "/")
        if P.MODULE_CALL_FILE in name and fr.get(P.FRAME_NAME) in P.MODULE_CALL_NAMES:
            outer = k
    users = [fr for fr in frames if is_user_file(str(fr.get(P.FRAME_FILE) or ""))]
    outside = [fr for fr in frames[outer + 1 :] if is_user_file(str(fr.get(P.FRAME_FILE) or ""))]
    found = outside or users
    return found[0] if found else None


def history_holders(snapshot: Mapping[str, Any], device: int) -> list[dict[str, Any]]:
    """Live blocks of ``device`` that kept their allocation stack, summed by the user's line."""
    by_line: dict[tuple[str, int], int] = {}
    for seg in snapshot.get("segments") or []:
        if seg.get(P.DEVICE) != device:  # torch names the snapshot's field as the records do
            continue
        for block in seg.get("blocks") or []:
            if block.get("state") != "active_allocated" or not block.get(P.EVENT_FRAMES):
                continue
            site = call_site(list(block[P.EVENT_FRAMES]))
            if site is None:
                continue
            key = (str(site.get(P.FRAME_FILE)), int(site.get(P.FRAME_LINE) or 0))
            by_line[key] = by_line.get(key, 0) + int(block.get(P.EVENT_SIZE) or 0)
    return [
        {
            P.HOLDER_BYTES: size,
            P.FRAME_FILE: filename,
            P.FRAME_LINE: line,
            P.HOLDER_CODE: code_of(filename, line),
            P.HOLDER_NAME: None,
            P.HOLDER_HOW: P.HOLDER_HOW_HISTORY,
            P.HOLDER_MODEL: False,
            P.HOLDER_GRAPH: False,
        }
        for (filename, line), size in sorted(by_line.items(), key=lambda kv: -kv[1])[: P.MAX_OOM_HOLDERS]
    ]


class _Walk:
    """Device bytes reachable from objects, each storage counted once over the whole walk."""

    def __init__(self, torch: Any, ours: Callable[[Any], bool]) -> None:
        self.torch = torch
        self.ours = ours
        self.seen_storages: set[int] = set()
        self.seen_objects: set[int] = set()
        self.left = MAX_OBJECTS
        self.deadline = time.monotonic() + MAX_SECONDS
        self._saved_names: dict[type, tuple[str, ...]] = {}
        # the autograd nodes visited, kept alive for the walk: torch makes a new Python wrapper at
        # each ``next_functions`` read, and a freed wrapper's id() is reused by the next one, which
        # ``seen_objects`` would then take for a node already walked (the graph cut short)
        self._nodes: list[Any] = []

    def exhausted(self) -> bool:
        return self.left <= 0 or time.monotonic() > self.deadline

    def _tensor_bytes(self, t: Any) -> int:
        try:
            if not self.ours(t):
                return 0
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self.seen_storages:
                return 0
            self.seen_storages.add(key)
            return int(storage.nbytes())
        except Exception:  # noqa: BLE001 - a tensor subclass, a meta tensor: not device bytes
            return 0

    def _saved(self, node: Any) -> Iterator[Any]:
        """The tensors an autograd node saved for backward (``_saved_self``, ``_saved_other``...)."""
        names = self._saved_names.get(type(node))
        if names is None:
            names = self._saved_names[type(node)] = tuple(
                n for n in dir(node) if n.startswith("_saved_") and not n.startswith("_saved_tensors")
            )
        for name in names:
            try:
                value = getattr(node, name)
            except Exception:  # noqa: BLE001 - freed by a backward already
                continue
            if isinstance(value, self.torch.Tensor):
                yield value
            elif isinstance(value, (tuple, list)):
                yield from (v for v in value if isinstance(v, self.torch.Tensor))
        variable = getattr(node, "variable", None)  # AccumulateGrad: the leaf
        if isinstance(variable, self.torch.Tensor):
            yield variable

    def graph(self, root: Any) -> int:
        """Bytes of the tensors saved by the autograd graph under ``root`` (a ``grad_fn``)."""
        total, todo = 0, [root]
        while todo and not self.exhausted():
            node = todo.pop()
            if node is None or id(node) in self.seen_objects:
                continue
            self.seen_objects.add(id(node))
            self._nodes.append(node)
            self.left -= 1
            for t in self._saved(node):
                total += self._tensor_bytes(t)
            for nxt, _ in getattr(node, "next_functions", ()) or ():
                todo.append(nxt)
        return total

    def bytes_of(self, obj: Any, max_depth: int = MAX_DEPTH) -> tuple[int, int, bool]:
        """``(bytes, of which an autograd graph's, whether a model's)`` reachable from ``obj``,
        following plain objects' attributes ``max_depth`` deep."""
        torch = self.torch
        total = graph = 0
        model = isinstance(obj, (torch.nn.Module, torch.optim.Optimizer))
        todo: deque[tuple[Any, int]] = deque([(obj, 0)])
        while todo and not self.exhausted():
            item, depth = todo.popleft()
            if id(item) in self.seen_objects:
                continue
            self.seen_objects.add(id(item))
            self.left -= 1
            if isinstance(item, torch.Tensor):
                total += self._tensor_bytes(item)
                if item.is_leaf and item.grad is not None:  # a non-leaf's .grad only warns
                    total += self._tensor_bytes(item.grad)
                if item.grad_fn is not None:
                    g = self.graph(item.grad_fn)
                    total, graph = total + g, graph + g
            elif isinstance(item, torch.nn.Module):
                todo.extend((t, depth) for t in item.parameters())
                todo.extend((t, depth) for t in item.buffers())
            elif isinstance(item, torch.optim.Optimizer):
                todo.extend((s, depth) for s in item.state.values())
            elif isinstance(item, (list, tuple, set, frozenset, deque)):
                todo.extend((v, depth) for v in item)
            elif isinstance(item, Mapping):
                todo.extend((v, depth) for v in item.values())
            elif depth < max_depth and _plain_instance(item):
                todo.extend((v, depth + 1) for v in vars(item).values())
        return total, graph, model


#: Objects whose attributes are no user data: modules (``torch`` itself), functions, frames, code.
_NOT_DATA = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.CodeType,
)


#: Packages whose objects are the kernel's machinery, not the user's data (IPython's ``exit``
#: reaches the shell, and through it the whole namespace).
_MACHINERY = ("IPython.", "ipykernel.", "jupyter_client.", "traitlets.", "jupyter_gpu_panel.")


def _plain_instance(obj: Any) -> bool:
    """An object whose attributes may hold tensors: not a module, class, function or the like."""
    if isinstance(obj, _NOT_DATA) or str(type(obj).__module__).startswith(_MACHINERY):
        return False
    return isinstance(getattr(obj, "__dict__", None), dict)


def growing_lines(source: str) -> dict[str, int]:
    """Per name, the line of ``source`` that grows it last (``x += ...``, ``x.append(...)``,
    ``x[k] = ...``), else the line that assigns it last."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    assigned: dict[str, int] = {}
    grown: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            grown[node.target.id] = max(grown.get(node.target.id, 0), node.lineno)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                        assigned[sub.id] = max(assigned.get(sub.id, 0), node.lineno)
                    elif isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name):
                        grown[sub.value.id] = max(grown.get(sub.value.id, 0), node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in GROWING_CALLS
            and isinstance(node.func.value, ast.Name)
        ):
            grown[node.func.value.id] = max(grown.get(node.func.value.id, 0), node.lineno)
    return {**assigned, **grown}


def _source(filename: str) -> str:
    return "".join(linecache.getlines(filename))


def variable_holders(frames: list[Any], torch: Any, ours: Callable[[Any], bool]) -> list[dict[str, Any]]:
    """The variables of ``frames`` (the user's frames an error passed through, innermost first)
    that reach the most device bytes, with the line that grows or assigns each."""
    walk = _Walk(torch, ours)
    found: list[dict[str, Any]] = []
    named: list[tuple[Any, str, Any]] = []
    for frame in frames:
        filename = frame.f_code.co_filename
        if not is_user_file(filename):
            continue
        for name, value in list(frame.f_locals.items()):
            if name.startswith("__") or isinstance(value, _NOT_DATA):
                continue
            named.append((frame, name, value))
    # models first: their parameters and optimizer state are what training needs, not a leak;
    # then what each variable holds itself, before objects' attributes (which may reach others')
    named.sort(key=lambda fv: not isinstance(fv[2], (torch.nn.Module, torch.optim.Optimizer)))
    lines: dict[str, dict[str, int]] = {}
    held: dict[int, tuple[int, int, bool]] = {}
    for depth in (0, MAX_DEPTH):
        for k, (_frame, _name, value) in enumerate(named):
            if walk.exhausted():
                break
            if depth and not _plain_instance(value):
                continue
            walk.seen_objects.discard(id(value))  # the second pass looks into it again
            size, graph, model = walk.bytes_of(value, depth)
            was = held.get(k, (0, 0, model))
            held[k] = (was[0] + size, was[1] + graph, model)
    for k, (frame, name, _value) in enumerate(named):
        size, graph, model = held.get(k, (0, 0, False))
        if not size:
            continue
        filename = frame.f_code.co_filename
        if filename not in lines:
            lines[filename] = growing_lines(_source(filename))
        line = lines[filename].get(name)
        found.append(
            {
                P.HOLDER_BYTES: size,
                P.FRAME_FILE: filename if line else None,
                P.FRAME_LINE: line,
                P.HOLDER_CODE: code_of(filename, line) if line else None,
                P.HOLDER_NAME: name[:100],
                P.HOLDER_HOW: P.HOLDER_HOW_VARIABLE,
                P.HOLDER_MODEL: model,
                P.HOLDER_GRAPH: graph * 2 > size,
            }
        )
    found.sort(key=lambda h: -h[P.HOLDER_BYTES])
    return found[: P.MAX_OOM_HOLDERS]


def traceback_frames(error: BaseException) -> list[Any]:
    """The frames ``error`` passed through, innermost first."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames[::-1]
