"""How the leak verdicts read to a person: sizes, durations and the one-line forecast.

Pure and dependency-free, so the panel's message, the CLI and the triage say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional


def human_bytes(n: float) -> str:
    """``33554432`` -> ``"32 MiB"``, three significant digits, binary units."""
    n = abs(float(n))
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


#: What one position of a probe's series is, by ``step_source``.
STEP_WORDS = {"optimizer": "step", "forward": "iteration", "timer": "second"}


def step_word(report: Mapping[str, Any]) -> str:
    """``step`` (an iteration of optimizer steps), ``iteration`` (of a loop without an
    optimizer) or ``second`` (the probe's clock, in code that runs neither)."""
    return STEP_WORDS.get(report.get("step_source") or "optimizer", "step")


def onset_phrase(report: Mapping[str, Any]) -> str:
    """Where the growth began: ``growing since step 1,200`` or ``growing for the last 40 s``."""
    onset = report.get("onset_step")
    if onset is None:
        return ""
    if step_word(report) == "second":
        current = report.get("current_step")
        since = max(0.0, float(current) - float(onset)) if current is not None else None
        return (
            "growing since the clock's first reading"
            if since is None
            else f"growing for the last {human_seconds(since)}"
        )
    return f"growing since {step_word(report)} {int(onset):,}"


def leak_message(report: Mapping[str, Any]) -> str:
    """One sentence for the panel, the notification and the CLI.

    ``report`` holds the detector's fields (``leak``, ``actionable``, ``bytes_per_step`` or
    ``bytes_per_second``, ``seconds_to_oom``, ``steps_to_oom``, ``current_step``). A step is an
    iteration of the loop (its optimizers' steps together); in a loop without an optimizer
    (``step_source`` ``forward``) the sentence says "iteration", and on the probe's clock
    (``timer``) it speaks per second, with no position to name.
    """
    step = step_word(report)
    clock = step == "second"
    if not report.get("leak"):
        return f"No memory growth across {step}s." if "bytes_per_step" in report and not clock else "No memory growth."
    bps = report.get("bytes_per_step")
    article = "an" if step[0] in "aeiou" else "a"
    rate = f"{human_bytes(bps)} {article} {step}" if bps else f"{human_bytes(report.get('bytes_per_second') or 0)}/s"
    if not report.get("actionable"):
        return f"Slow growth of {rate}: would not fill the memory within 24 h."
    parts = [f"Leaking {rate}"]
    secs = report.get("seconds_to_oom")
    steps = report.get("steps_to_oom")
    if secs is not None:
        parts.append(f"full in ~{human_seconds(secs)}")
    if clock:
        pass  # the clock's position is only seconds since its first reading: "full in" says it all
    elif steps is not None and report.get("current_step") is not None:
        parts.append(f"around {step} {int(report['current_step'] + steps):,}")
    elif steps is not None:
        parts.append(f"in ~{steps:,.0f} {step}s")
    return ", ".join(parts) + "."


def _short_code(code: str, limit: int = 40) -> str:
    """``val_loss += model(xv).pow(2).mean()`` -> ``val_loss += model(xv)…``: enough to find it."""
    code = " ".join(code.split())
    return code if len(code) <= limit else code[: limit - 1].rstrip() + "…"


def oom_holder(oom: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The holder to name: the largest that is no model's (parameters and optimizer state are
    what training needs), else the largest."""
    holders = list(oom.get("holders") or [])
    data = [h for h in holders if not h.get("model")]
    return max(data or holders, key=lambda h: h.get("bytes") or 0, default=None)


def holder_label(holder: Mapping[str, Any]) -> str:
    """```val_loss += …` (cell line 8)``, ```train.py:42``` or ```val_loss```."""
    code, where, name = holder.get("code"), holder.get("where"), holder.get("name")
    if code and where:
        return f"`{_short_code(str(code))}` ({where})"
    if where:
        return f"`{where}`" + (f" (`{name}`)" if name else "")
    return f"`{name}`"


def oom_message(oom: Mapping[str, Any]) -> str:
    """``Ran out of memory at step 557 in cell [12]; `val_loss += …` (cell line 8) holds 5.2 GiB.``
    and the numbers: what was asked, allocated, reserved and allowed."""
    step, word = oom.get("step"), oom.get("step_word") or "step"
    where = f" at {word} {int(step):,}" if step is not None and word != "second" else ""
    head = f"Ran out of memory{where}"
    if oom.get("execution_count") is not None:
        head += f" in cell [{oom['execution_count']}]"
    holder = oom_holder(oom)
    if holder is not None and holder.get("bytes"):
        head += f"; {holder_label(holder)} holds {human_bytes(holder['bytes'])}"
    numbers = []
    if oom.get("requested"):
        numbers.append(f"it asked for {human_bytes(oom['requested'])}")
    held = []
    if oom.get("allocated") is not None:
        held.append(f"{human_bytes(oom['allocated'])} allocated")
    if oom.get("reserved") is not None:
        held.append(f"{human_bytes(oom['reserved'])} reserved")
    if held:
        limit = f" of {human_bytes(oom['limit'])}" if oom.get("limit") else ""
        numbers.append(("with " if numbers else "") + " and ".join(held) + limit)
    tail = (" " + " ".join(numbers)[0].upper() + " ".join(numbers)[1:] + ".") if numbers else ""
    return head + "." + tail


def oom_advice(oom: Mapping[str, Any]) -> list[str]:
    """What to do after an OOM, most specific first (the panel lists them; a kernel's rows
    offer Release cached memory and Restart)."""
    holder = oom_holder(oom)
    name = f"`{holder['name']}`" if holder is not None and holder.get("name") else "what the loop keeps"
    out = []
    if holder is not None and holder.get("graph"):
        out.append(f"{name} keeps every step's autograd graph: add `.item()` for a number, or `.detach()`.")
    else:
        out.append(f"`del` {name} when done, or keep numbers with `.item()` rather than tensors.")
    out.append("Run evaluation and generation under `torch.no_grad()`.")
    if oom.get("cell") is not None or oom.get("execution_count") is not None:
        out.append("Release cached memory gives torch's cache back; the variables stay.")
        out.append("Restart the kernel to free all of its memory.")
    else:
        out.append("Fix the line and run it again.")
    return out
