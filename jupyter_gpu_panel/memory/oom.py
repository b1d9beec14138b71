"""An OOM record, validated, and what the verdict says about it.

The probe writes an ``oom`` record when a CUDA allocation failed and the failure ended a cell or
the script (``probe/oom.py``); recorded traces end with a shorter one (``i``, ``iter``, torch's
message). ``valid_oom`` keeps what is well-formed: the numbers the record states, else those
torch's message states (``protocol.oom_numbers``). ``oom_view`` is the verdict's ``oom`` object:
where it failed, what was asked and held, the largest holders by line, what to do, one sentence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Optional

from ..probe import protocol as P
from .wording import human_bytes, oom_advice, oom_message

MAX_TEXT = 1024
MAX_PATH = 4096
#: Byte fields of an OOM record besides the asked size.
OOM_BYTES = (P.ALLOCATED, P.RESERVED, P.LIMIT, P.FREE)
#: ``source`` of a recorded trace's OOM line (torch's message only).
SOURCE_RECORDED = "recorded"


def _int(value: Any, lo: int = 0, hi: int = P.MAX_BYTES_VALUE) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if lo <= value <= hi else None


def _text(value: Any, limit: int = MAX_TEXT) -> Optional[str]:
    return value[:limit] if isinstance(value, str) and value else None


def _place(raw: Any) -> Optional[dict[str, Any]]:
    """A user line (file, line, code) or None."""
    if not isinstance(raw, Mapping):
        return None
    filename, line = _text(raw.get(P.FRAME_FILE), MAX_PATH), _int(raw.get(P.FRAME_LINE), 1, 10**7)
    if filename is None or line is None:
        return None
    return {P.FRAME_FILE: filename, P.FRAME_LINE: line, P.HOLDER_CODE: _text(raw.get(P.HOLDER_CODE), P.MAX_OOM_CODE)}


def _holder(raw: Any) -> Optional[dict[str, Any]]:
    if not isinstance(raw, Mapping):
        return None
    size = _int(raw.get(P.HOLDER_BYTES))
    how = raw.get(P.HOLDER_HOW)
    if size is None or how not in P.HOLDER_HOWS:
        return None
    place = _place(raw) or {P.FRAME_FILE: None, P.FRAME_LINE: None, P.HOLDER_CODE: None}
    name = _text(raw.get(P.HOLDER_NAME), 100)
    if place[P.FRAME_FILE] is None and name is None:
        return None
    return {
        P.HOLDER_BYTES: size,
        **place,
        P.HOLDER_NAME: name,
        P.HOLDER_HOW: how,
        P.HOLDER_MODEL: raw.get(P.HOLDER_MODEL) is True,
        P.HOLDER_GRAPH: raw.get(P.HOLDER_GRAPH) is True,
    }


def valid_oom(rec: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The OOM line's known fields, checked (``index``: its validated ``i``); never None."""
    out: dict[str, Any] = {P.INDEX: index, P.OOM: True}
    it = _int(rec.get(P.ITER), 0, P.MAX_INDEX)
    if it is not None:
        out[P.ITER] = it
    t = rec.get(P.TIME)
    if isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and 0 <= t <= 1e11:
        out[P.TIME] = float(t)
    if rec.get(P.KIND) in P.KINDS:
        out[P.KIND] = rec[P.KIND]
    message = _text(rec.get(P.OOM_MESSAGE), P.MAX_OOM_MESSAGE)
    stated = P.oom_numbers(message)
    for name in (P.OOM_REQUESTED, *OOM_BYTES):
        value = _int(rec.get(name))
        out[name] = value if value is not None else stated.get(name)
    out[P.OOM_MESSAGE] = message
    source = rec.get(P.OOM_SOURCE)
    out[P.OOM_SOURCE] = source if source in P.OOM_SOURCES else SOURCE_RECORDED
    cell = rec.get(P.CELL)
    out[P.CELL] = cell[:256] if isinstance(cell, str) and cell else None
    out[P.EXECUTION_COUNT] = _int(rec.get(P.EXECUTION_COUNT), 0, P.MAX_INDEX)
    out[P.OOM_SITE] = _place(rec.get(P.OOM_SITE))
    raw_holders = rec.get(P.OOM_HOLDERS)
    holders = [_holder(h) for h in raw_holders[: P.MAX_OOM_HOLDERS]] if isinstance(raw_holders, list) else []
    out[P.OOM_HOLDERS] = [h for h in holders if h is not None]
    return out


def short_place(filename: Optional[str], line: Optional[int]) -> Optional[str]:
    """``train.py:42``; a notebook cell's file (``/tmp/ipykernel_<pid>/<hash>.py``) reads ``cell line 8``."""
    if filename is None or line is None:
        return None
    if re.search(r"ipykernel_\d+[/\\]\d+\.py$", filename):
        return f"cell line {line}"
    return f"{filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{line}"


def oom_view(oom: Mapping[str, Any], step_word: str) -> dict[str, Any]:
    """The verdict's ``oom``: the failure as the API and the panel show it."""
    site = oom.get(P.OOM_SITE)
    holders = [
        {
            "bytes": h[P.HOLDER_BYTES],
            "where": short_place(h[P.FRAME_FILE], h[P.FRAME_LINE]),
            "code": h[P.HOLDER_CODE],
            "name": h[P.HOLDER_NAME],
            "how": h[P.HOLDER_HOW],
            "model": h[P.HOLDER_MODEL],
            "graph": h[P.HOLDER_GRAPH],
        }
        for h in oom.get(P.OOM_HOLDERS) or []
    ]
    holders.sort(key=lambda h: -h["bytes"])
    view: dict[str, Any] = {
        "step": oom.get(P.ITER, oom.get(P.INDEX)),
        "step_word": step_word,
        "t": oom.get(P.TIME),
        "cell": oom.get(P.CELL),
        "execution_count": oom.get(P.EXECUTION_COUNT),
        "requested": oom.get(P.OOM_REQUESTED),
        "allocated": oom.get(P.ALLOCATED),
        "reserved": oom.get(P.RESERVED),
        "limit": oom.get(P.LIMIT),
        "source": oom.get(P.OOM_SOURCE) or SOURCE_RECORDED,
        "site": None
        if site is None
        else {"where": short_place(site[P.FRAME_FILE], site[P.FRAME_LINE]), "code": site[P.HOLDER_CODE]},
        "holders": holders,
        "error": oom.get(P.OOM_MESSAGE),
    }
    view["advice"] = oom_advice(view)
    view["message"] = oom_message(view)
    return view


#: ``state`` of a steps verdict: the run goes on (or ended otherwise), or it ran out of memory.
STATE_RUNNING = "running"
STATE_OOM = "oom"


def mark_oom(report: dict[str, Any], oom: Optional[Mapping[str, Any]]) -> None:
    """A steps verdict's ``state`` and ``oom``. A run that ran out of memory forecasts nothing
    more ("full in ~0 s" says nothing): its message is the failure's, with what held the memory."""
    from .wording import step_word

    if oom is None:
        report["state"], report["oom"] = STATE_RUNNING, None
        return
    word = step_word(report)
    view = oom_view(oom, word)
    bps, onset = report.get("bytes_per_step"), report.get("onset_step")
    if report.get("leak") and bps and onset is not None and word != "second":
        view["message"] += f" Memory had grown {human_bytes(bps)} a {word} since {word} {int(onset):,}."
    report.update(state=STATE_OOM, oom=view, message=view["message"], forecast=None)
    report["steps_to_oom"] = report["seconds_to_oom"] = None
