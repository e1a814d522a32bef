"""Fetching results incrementally into ``results/<msm_id>/part-*.jsonl.gz``.

Safe to interrupt at any point and to rerun:

* the resume point is the last result timestamp of the parts on disk (a part
  exists whole or not at all, see :mod:`.store`), never a separate counter;
* ``start`` is inclusive and probes upload late, so each fetch asks again from
  ``overlap`` before the resume point and drops every result already stored
  (compared by content digest against the parts that reach into that span),
  as well as repeats within the run;
* the span up to now is asked for in windows, each written as its own part,
  so an interruption costs at most one window; the last window is open-ended,
  so a server clock ahead of ours loses nothing.

What is missed: a result that a probe uploads more than ``overlap`` after it
was measured (fetch again with a larger ``overlap``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rootcanary.backends.atlas.campaign import AtlasCampaign
from rootcanary.backends.atlas.client import AtlasClient
from rootcanary.backends.atlas.store import (
    identity,
    parts,
    read_part,
    remove_stale_temporaries,
    results_dir,
    timestamp,
    write_part,
)
from rootcanary.errors import DataError
from rootcanary.observation import Tally

log = logging.getLogger("rootcanary.atlas")

DEFAULT_OVERLAP = 2 * 3600.0
DEFAULT_WINDOW = 86400.0
#: Results cannot predate creation; allow this much clock difference.
CLOCK_MARGIN = 3600


@dataclass(frozen=True)
class Window:
    msm_id: int
    start: int
    stop: int | None  # None: open-ended (everything from start on)


@dataclass(frozen=True)
class FetchReport:
    msm_id: int
    new: int
    repeated: int  # already stored, dropped
    parts_written: int


def windows(msm_id: int, start: int, now: int, size: int) -> list[Window]:
    """``[start, start+size-1], …, [x, open)``: boundaries overlap by nothing."""
    out: list[Window] = []
    cursor = start
    while cursor + size <= now:
        out.append(Window(msm_id, cursor, cursor + size - 1))
        cursor += size
    out.append(Window(msm_id, cursor, None))
    return out


def resume_point(directory: Path) -> int | None:
    stored = parts(directory)
    return max(part.last for part in stored) if stored else None


def first_start(entry: dict[str, Any], request: dict[str, Any]) -> int:
    """Where the first fetch of a measurement begins."""
    if isinstance(request.get("start_time"), int):
        return int(request["start_time"]) - CLOCK_MARGIN
    created = entry.get("created")
    if isinstance(created, str):
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
        return int(moment.timestamp()) - CLOCK_MARGIN
    return 0


@dataclass
class Fetcher:
    campaign: AtlasCampaign
    client: AtlasClient
    overlap: float = DEFAULT_OVERLAP
    window: float = DEFAULT_WINDOW
    clock: Callable[[], float] = time.time
    tally: Tally | None = None

    def plan(self, entries: Sequence[dict[str, Any]]) -> list[Window]:
        """Every window to ask for, measurement by measurement."""
        now = int(self.clock())
        requests = self.campaign.manifest.extra["requests"]
        out: list[Window] = []
        for entry in entries:
            msm_id = int(entry["msm_id"])
            resume = resume_point(results_dir(self.campaign.directory, msm_id))
            if resume is None:
                start = first_start(entry, requests[entry["request"]])
            else:
                start = max(0, resume - int(self.overlap))
            out.extend(windows(msm_id, start, now, max(1, int(self.window))))
        return out

    def fetch(
        self,
        entries: Sequence[dict[str, Any]],
        advance: Callable[[Window, int], None] | None = None,
    ) -> list[FetchReport]:
        """Fetch every window; ``advance(window, new)`` after each is stored."""
        tally = self.tally if self.tally is not None else Tally()
        reports: dict[int, FetchReport] = {}
        seen: dict[int, set[str]] = {}
        next_seq: dict[int, int] = {}
        for window in self.plan(entries):
            msm_id = window.msm_id
            directory = results_dir(self.campaign.directory, msm_id)
            if msm_id not in seen:
                remove_stale_temporaries(directory)
                seen[msm_id], next_seq[msm_id] = stored_digests(directory, window.start)
                reports[msm_id] = FetchReport(msm_id, 0, 0, 0)
            records = self.client.results(msm_id, window.start, window.stop)
            fresh = []
            repeated = 0
            for record in records:
                if not isinstance(record, dict):
                    tally.skip("result is not a JSON object", f"measurement {msm_id}")
                    continue
                if timestamp(record) is None:
                    # Kept (raw results are stored as given) but counted: the
                    # classifier will say what it makes of it.
                    tally.skip("result without an integer timestamp (stored)")
                digest = identity(record)
                if digest in seen[msm_id]:
                    repeated += 1
                    continue
                seen[msm_id].add(digest)
                fresh.append(record)
            tally.ok(len(fresh))
            if fresh:
                write_part(directory, next_seq[msm_id], fresh)
                next_seq[msm_id] += 1
            old = reports[msm_id]
            reports[msm_id] = FetchReport(
                msm_id,
                old.new + len(fresh),
                old.repeated + repeated,
                old.parts_written + (1 if fresh else 0),
            )
            if advance is not None:
                advance(window, len(fresh))
        return list(reports.values())


def stored_digests(directory: Path, start: int) -> tuple[set[str], int]:
    """Digests of stored results from ``start`` on, and the next part number."""
    stored = parts(directory)
    digests: set[str] = set()
    for part in stored:
        if part.last >= start or (part.count and part.first == part.last == 0):
            try:
                for record in read_part(part.path):
                    digests.add(identity(record))
            except (OSError, EOFError, ValueError) as exc:
                # Parts are written atomically, so this is damage from
                # outside; refuse rather than store results twice.
                raise DataError(
                    f"{part.path}: unreadable ({exc}); move it away and "
                    f"fetch again with an --overlap reaching back to "
                    f"{part.first} to get its results anew"
                ) from None
    return digests, (stored[-1].seq + 1 if stored else 1)
