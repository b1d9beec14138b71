"""Each probe's part of the kernels document and its leak verdict, kept on its follower.

Runs on the tracker's probe-reading thread. A probe's part is rebuilt only when what was read
changed (its steps, cells, triage or verdict), and its chart series, 95 % of its bytes, is
encoded then, once (``orjson.Fragment``), so encoding the document copies unchanged probes'
bytes. Verdicts are re-made for probes with new steps within a budget of seconds a refresh
(``judge_stale``), stopping early when a request waits on this refresh (``hurry``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable, Optional

import orjson

from ..memory.follower import ProbeFollower, Probes
from ..probe import protocol as P

log = logging.getLogger(__name__)


class ProbeViews:
    def __init__(self, probes: Probes, triage_on_alarm: bool, hurry: threading.Event) -> None:
        self.probes = probes
        #: ask a probe for a triage on its first actionable alarm
        self.triage_on_alarm = triage_on_alarm
        #: set while a request waits on the refresh running: re-judge no further probe
        self.hurry = hurry

    def scripts(self, owner_of: Callable[[int], Optional[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The rows of probes in no kernel: scripts and torchrun ranks that called probe.start()
        (poll has already dropped those whose process ended; refused probes are in no list)."""
        rows = []
        for f in sorted(self.probes.scripts(), key=lambda f: f.pid):
            probe, leak = self.view(f)
            rows.append(
                {
                    "pid": f.pid,
                    "argv": list(f.meta[P.META_ARGV]),
                    "rank": f.meta[P.META_RANK],
                    "owner": owner_of(f.pid),
                    "probe": probe,
                    "leak": leak,
                }
            )
        return rows

    def judge_stale(self, budget: float) -> None:
        """Re-make the verdicts of probes with new steps: never-judged ones all, then the stalest
        first, one at least and more while ``budget`` seconds last. One probe's records that
        defeat the detector leave it without a verdict (``judge_error``), never the others."""
        stale = [f for f in list(self.probes.followers.values()) if f.stale]
        stale.sort(key=lambda f: (f.judged is not None, f.judged_at))
        deadline = time.monotonic() + budget
        rejudged = 0
        for f in stale:
            if f.judged is not None:
                if rejudged and (time.monotonic() > deadline or self.hurry.is_set()):
                    break
                rejudged += 1
            try:
                f.judge()
                f.judge_error = None
            except Exception as err:
                log.exception("probe %s: judging its readings failed", f.pid)
                f.leak, f.judged, f.judged_at = None, f.steps.version, time.monotonic()
                f.judge_error = type(err).__name__

    def auto_triage(self, shown: Iterable[Optional[ProbeFollower]]) -> None:
        """Ask each shown probe (a kernel's main one, a script's) whose leak just became
        actionable for a triage, once per probe: the allocation history of a few steps names the
        line. The one write of a refresh into the probes' directory, kept out of the view so
        that building the view never writes a file."""
        if not self.triage_on_alarm:
            return
        for f in shown:
            if f is None or f.leak is None or not f.leak["actionable"] or f.triage is not None:
                continue
            try:
                f.request_triage(auto=True)
            except OSError:
                log.warning("cannot ask probe %s for a triage", f.pid, exc_info=True)

    def view(self, main: ProbeFollower) -> tuple[Optional[dict[str, Any]], Optional[dict[str, Any]]]:
        """A probe's summary and its per-step leak verdict; (None, None) with a warning when its
        records defeat the detector, so one probe never blanks the view of the others."""
        failed = main.judge_error
        if failed is None:
            try:
                return self._view_of(main)
            except Exception as err:
                log.exception("probe %s: building its view failed", main.pid)
                failed = type(err).__name__
        self.probes.warn(f"probe {main.pid}: its readings could not be judged ({failed})")
        return None, None

    def _view_of(self, main: ProbeFollower) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
        """A probe's summary and its per-step leak verdict (as last judged). Kept on the follower,
        keyed by what was read: an unchanged probe costs nothing. Writes nothing: the triage an
        alarm asks for is ``auto_triage``'s, a step of the refresh before the view is built."""
        leak = main.leak
        key = (main.steps.version, main.skipped, main.cells_seen, id(main.triage), main.judged)
        if main.view is not None and main.view[0] == key:
            return main.view[1], leak
        probe = main.summary()
        # the chart's ~600 points a series are 95 % of a probe's part: encoded once, when they
        # change, and copied as they are into every encoding of the document (orjson.Fragment)
        probe["series"] = orjson.Fragment(orjson.dumps(probe["series"], option=orjson.OPT_SERIALIZE_NUMPY))
        probe["cells"] = leaks_per_cell(main)
        probe["fragmentation"] = leak["fragmentation"] if leak is not None else None
        main.view = (key, probe)
        return probe, leak


def leaks_per_cell(follower: ProbeFollower) -> Optional[dict[str, Any]]:
    if len(follower.cells) < 3:
        return None
    from ..memory.cells import analyze_cells

    return analyze_cells(list(follower.cells))
