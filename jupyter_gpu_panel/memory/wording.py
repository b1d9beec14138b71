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


def leak_message(report: Mapping[str, Any]) -> str:
    """One sentence for the panel, the notification and the CLI.

    ``report`` holds the detector's fields (``leak``, ``actionable``, ``bytes_per_step`` or
    ``bytes_per_second``, ``seconds_to_oom``, ``steps_to_oom``, ``current_step``). A step is an
    iteration of the loop (its optimizers' steps together); in a loop without an optimizer
    (``step_source`` ``forward``) the sentence says "iteration".
    """
    step = "iteration" if report.get("step_source") == "forward" else "step"
    if not report.get("leak"):
        return f"No memory growth across {step}s." if "bytes_per_step" in report else "No memory growth."
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
    if steps is not None and report.get("current_step") is not None:
        parts.append(f"around {step} {int(report['current_step'] + steps):,}")
    elif steps is not None:
        parts.append(f"in ~{steps:,.0f} {step}s")
    return ", ".join(parts) + "."
