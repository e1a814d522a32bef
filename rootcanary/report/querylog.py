"""What the report takes from our server's query log, in one streaming pass.

Two things (line format: briefs/querylog.md):

- RFC 8145 key-tag signals per UTC day, counted by
  :class:`rootcanary.telemetry.Counter8145` (the same counting as
  ``rootcanary telemetry``), and per time bucket the sources whose latest
  signal held each key tag (:class:`~rootcanary.report.model.HeldSeries`,
  for runs too short for days);
- queries for the root's DNSKEY set (``. DNSKEY``) per source and bucket: how
  often each validator refreshed its trust anchors. RFC 5011 §2.3 asks for a
  refresh at most every hour or half the TTL; the IMC 2019 study of the 2018
  roll saw resolvers query far more often after the roll.

Memory grows with sources times buckets, never with the number of lines.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orjson import loads

from rootcanary.observation import Tally
from rootcanary.readers.lines import chunks
from rootcanary.report.model import DnskeySeries, HeldSeries, QueryLog
from rootcanary.telemetry import BAD_JSON, BAD_LOG, Counter8145, signalled_tags

#: Where a run or campaign directory keeps the server's query log.
LOG_NAMES = ("server/queries.jsonl", "server/queries.jsonl.gz", "queries.jsonl")
_EPOCH_CACHE_LIMIT = 1 << 16
#: Source-buckets with signals kept for :class:`HeldSeries`; a log with more
#: (a real root's: millions of sources) gets the per-day counts only.
MAX_HELD_CELLS = 500_000


class QueryLogReader:
    """Feed query-log files (:meth:`add_file`); then call :meth:`result`."""

    def __init__(self, bucket_seconds: int, keytags: Iterable[int]) -> None:
        self.bucket_seconds = bucket_seconds
        tags = tuple(keytags)
        self.keytags = tags
        self._days = Counter8145(tags)
        # (source, bucket) -> (time, key tags of interest) of its last signal;
        # the log's times have fixed digits (briefs/querylog.md): text order is
        # time order.
        self._held: dict[tuple[str, int], tuple[str, frozenset[int]]] | None = {}
        self._dnskey: Counter[tuple[str, int]] = Counter()
        self._epochs: dict[str, int] = {}
        self._files: list[Path] = []
        self.lines = 0
        self._first: int | None = None
        self._last: int | None = None

    def add_file(self, path: Path, tally: Tally) -> None:
        self._files.append(path)
        read = 0
        count = self._line
        for number, line in _lines(path, tally):
            problem = count(line)
            if problem is None:
                read += 1
            else:
                tally.skip(problem, f"{path}:{number}")
        tally.ok(read)
        self.lines += read

    def _line(self, line: bytes) -> str | None:
        """Count one line; the reason when it cannot be used."""
        try:
            record: Any = loads(line)
        except ValueError:
            return BAD_JSON
        if type(record) is not dict:
            return BAD_LOG
        when, source = record.get("time"), record.get("src")
        if type(when) is not str or type(source) is not str:
            return BAD_LOG
        epoch = self._epoch(when)
        if epoch is None:
            return BAD_LOG
        if self._first is None or epoch < self._first:
            self._first = epoch
        if self._last is None or epoch > self._last:
            self._last = epoch
        start = epoch // self.bucket_seconds * self.bucket_seconds
        if record.get("ta") is not None or record.get("edns_key_tag") is not None:
            tags = signalled_tags(record)
            if tags:
                self._days.add(when[:10], source, tags)
                self._hold(source, start, when, tags)
        if record.get("qtype") == "DNSKEY" and record.get("qname") == ".":
            self._dnskey[(source, start)] += 1
        return None

    def _hold(self, source: str, start: int, when: str, tags: list[int]) -> None:
        held = self._held
        if held is None:
            return
        key = (source, start)
        known = held.get(key)
        # The latest signal in the bucket wins, whatever order lines come in.
        if known is None or when >= known[0]:
            if known is None and len(held) >= MAX_HELD_CELLS:
                self._held = None
                return
            held[key] = (when, frozenset(t for t in tags if t in self.keytags))

    def _held_series(self) -> HeldSeries | None:
        if self._held is None or not self._held:
            return None
        width = self.bucket_seconds
        by_bucket: dict[int, list[tuple[str, frozenset[int]]]] = {}
        for (source, start), (_, tags) in self._held.items():
            by_bucket.setdefault(start, []).append((source, tags))
        first, last = min(by_bucket), max(by_bucket)
        starts = list(range(first, last + 1, width))
        if len(starts) > MAX_HELD_CELLS:
            return None
        latest: dict[str, frozenset[int]] = {}
        holding = dict.fromkeys(self.keytags, 0)
        holders: list[list[int]] = [[] for _ in self.keytags]
        sources: list[int] = []
        signalling = 0  # sources whose latest set holds a key tag of interest
        for start in starts:
            for source, tags in by_bucket.get(start, ()):
                before = latest.get(source, frozenset())
                for tag in before:
                    holding[tag] -= 1
                for tag in tags:
                    holding[tag] += 1
                signalling += bool(tags) - bool(before)
                latest[source] = tags
            for row, tag in zip(holders, self.keytags, strict=True):
                row.append(holding[tag])
            sources.append(signalling)
        return HeldSeries(
            bucket_seconds=width,
            keytags=self.keytags,
            starts=tuple(starts),
            holders=tuple(tuple(row) for row in holders),
            sources=tuple(sources),
        )

    def _epoch(self, when: str) -> int | None:
        """Whole seconds of an ISO time; they repeat line after line, so the
        text up to the seconds is looked up in a cache."""
        head, tail = when[:19], when[19:]
        if tail == "Z" or (tail[:1] == "." and tail[-1:] == "Z"):
            cached = self._epochs.get(head)
            if cached is not None:
                return cached
            try:
                moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
            except ValueError:
                return None
            if len(self._epochs) >= _EPOCH_CACHE_LIMIT:
                self._epochs.clear()
            seconds = self._epochs[head] = int(moment.timestamp())
            return seconds
        # Another offset, or no zone (taken as UTC): the slow path.
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return math.floor(moment.timestamp())

    def result(self) -> QueryLog:
        totals: Counter[str] = Counter()
        per_source: dict[str, list[tuple[int, int]]] = {}
        for (source, start), count in self._dnskey.items():
            totals[source] += count
            per_source.setdefault(source, []).append((start, count))
        ranked = sorted(totals, key=lambda s: (-totals[s], s))
        return QueryLog(
            files=tuple(self._files),
            lines=self.lines,
            first=_moment(self._first),
            last=_moment(self._last),
            dnskey=DnskeySeries(
                bucket_seconds=self.bucket_seconds,
                sources=tuple(ranked),
                totals=tuple(totals[s] for s in ranked),
                counts=tuple(tuple(sorted(per_source[s])) for s in ranked),
            ),
            per_day=self._days.result(),
            held=self._held_series(),
        )


def read_query_logs(
    files: Iterable[Path], tally: Tally, bucket_seconds: int, keytags: Iterable[int]
) -> QueryLog:
    """Read the query logs once; see the module docstring."""
    reader = QueryLogReader(bucket_seconds, keytags)
    for path in files:
        reader.add_file(path, tally)
    return reader.result()


def _lines(path: Path, tally: Tally) -> Iterator[tuple[int, bytes]]:
    number = 0
    rest = b""
    for piece in chunks(path, tally):
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if line.strip():
                yield number, line
    if rest.strip():
        yield number + 1, rest


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
