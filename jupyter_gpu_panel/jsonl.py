"""JSON-lines records, as the traces and the probe write them.

One reader for every place that reads them (replay, leak traces, probe followers): a line that
does not parse is skipped, since the last line of a file still being written is often cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Optional, Union


def parse_lines(lines: Iterable[Union[bytes, str]]) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``lines``; blank, cut or non-object lines are skipped."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec


def read_jsonl(path: Union[str, Path], max_lines: Optional[int] = None) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file, from its first ``max_lines`` lines when given."""
    with open(path, "rb") as fh:
        return list(parse_lines(islice(fh, max_lines)))
