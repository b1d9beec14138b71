"""Metrics sources: real NVML, or a replay of a recorded trace."""

from __future__ import annotations

from typing import Optional

from .base import Source, SourceStatus

SOURCES = ("auto", "nvml", "replay")


def make_source(kind: str, replay_file: Optional[str] = None, visible_only: bool = False) -> Source:
    """Build the configured source. ``auto`` means NVML: it never falls back to demo data."""
    if kind in ("auto", "nvml"):
        from .nvml import NvmlSource

        return NvmlSource(visible_only=visible_only)
    if kind == "replay":
        from .replay import ReplaySource

        return ReplaySource(replay_file)
    raise ValueError(f"unknown source {kind!r}; expected one of {', '.join(SOURCES)}")


__all__ = ["SOURCES", "Source", "SourceStatus", "make_source"]
