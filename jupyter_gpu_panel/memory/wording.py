"""How the leak verdicts read to a person: sizes, durations and the one-line forecast.

Pure and dependency-free, so the panel's message, the CLI and the triage say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
