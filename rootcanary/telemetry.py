"""RFC 8145 key-tag telemetry: who signals which trust anchors, per day.

Validators report the key tags of their trust anchors to the authoritative
servers of the trust-anchor zone, in a ``_ta-<tags>`` query name (RFC 8145
§5.1) or an ``edns-key-tag`` option (§4). Two inputs carry those signals:

- our server's query log (one JSON object per line, ``--query-log``): the
  ``ta`` and ``edns_key_tag`` fields of each query, per ``src`` address, on
  the UTC day of ``time``;
- published datasets in the format of the root-server data released with the
  IMC 2019 study of the first root KSK roll: lines of
  ``date source keytag-list count``, e.g. ``2018-10-11 IP-3107609 19036,20326 1``.

For each day the result counts the distinct sources that signalled each key
tag of interest and those that signalled any of them (``tiana``, "trust
anchor of interest, any"); per source it keeps the first and last day each
tag was seen, so that those who never picked up a new key stand out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orjson import loads

from rootcanary.errors import DataError
from rootcanary.observation import Tally
from rootcanary.readers.lines import chunks

#: KSK-2010, KSK-2017 and KSK-2024 of the root zone.
DEFAULT_KEYTAGS: tuple[int, ...] = (19036, 20326, 38696)
#: File names read when a directory is given (any file given by name is read).
SUFFIXES = (".dat", ".jsonl", ".json", ".log", ".txt", ".ndjson")

BAD_LINE = "not a dataset line (date source keytags count)"
BAD_LOG = "query log line without time and src"
BAD_JSON = "bad JSON"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Day:
    """Distinct sources that signalled each key tag of interest on one day."""

    date: str
    counts: tuple[int, ...]  # in the order of Telemetry.keytags
    any: int  # sources that signalled at least one of them ("tiana")


@dataclass(frozen=True, slots=True)
class SourceHistory:
    """When one source signalled each key tag of interest (None: never)."""

    source: str
    first: tuple[str | None, ...]
    last: tuple[str | None, ...]
    days: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Telemetry:
    keytags: tuple[int, ...]
    days: tuple[Day, ...]
    sources: tuple[SourceHistory, ...]  # sources that signalled a tag of interest
    signals: int  # signal lines or logged queries with key tags read

    def never(self, keytag: int) -> tuple[SourceHistory, ...]:
        """Sources that signalled another tag of interest but never this one."""
        index = self.keytags.index(keytag)
        return tuple(s for s in self.sources if s.first[index] is None)

    def csv_lines(self) -> Iterator[str]:
        """``date,t<tag>...,tiana`` then one line per day (no quoting needed)."""
        yield ",".join(["date", *(f"t{tag}" for tag in self.keytags), "tiana"])
        for day in self.days:
            yield ",".join([day.date, *map(str, day.counts), str(day.any)])

    def source_csv_lines(self) -> Iterator[str]:
        header = ["source"]
        for tag in self.keytags:
            header += [f"first_t{tag}", f"last_t{tag}", f"days_t{tag}"]
        yield ",".join(header)
        for item in self.sources:
            row = [_csv_text(item.source)]
            for first, last, days in zip(item.first, item.last, item.days, strict=True):
                row += [first or "", last or "", str(days)]
            yield ",".join(row)


def _csv_text(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def signalled_tags(record: dict[str, Any]) -> list[int]:
    """The key tags one query-log record signals (empty when none).

    RFC 8145 §5.1 (``_ta-`` query names, the log's ``ta``) and §4 (EDNS
    option 14, ``edns_key_tag``) both count.
    """
    tags: list[int] = []
    for key in ("ta", "edns_key_tag"):
        value = record.get(key)
        if isinstance(value, list):  # null, or damaged input: nothing signalled
            tags.extend(
                t for t in value if isinstance(t, int) and not isinstance(t, bool)
            )
    return tags


def input_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and directories searched recursively by suffix."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not p.name.startswith(".")
                and p.name.lower().removesuffix(".gz").endswith(SUFFIXES)
            )
        elif path.is_file():
            out.append(path)
        else:
            raise DataError(f"{path}: no such file or directory")
    return out


class Counter8145:
    """Collects signals; :meth:`result` turns them into a :class:`Telemetry`."""

    def __init__(self, keytags: Iterable[int] = DEFAULT_KEYTAGS) -> None:
        self.keytags = tuple(dict.fromkeys(keytags))
        if not self.keytags:
            raise ValueError("at least one key tag of interest is needed")
        self._index = {tag: i for i, tag in enumerate(self.keytags)}
        self._source_ids: dict[str, int] = {}
        self._names: list[str] = []
        # day -> one set of source ids per key tag of interest
        self._days: dict[str, list[set[int]]] = {}
        self.signals = 0

    def add(self, day: str, source: str, tags: Iterable[int]) -> None:
        """One source signalled ``tags`` on ``day`` (ISO date)."""
        self.signals += 1
        sets = self._days.get(day)
        if sets is None:
            sets = self._days[day] = [set() for _ in self.keytags]
        wanted = [self._index[t] for t in tags if t in self._index]
        if not wanted:
            return
        sid = self._source_ids.get(source)
        if sid is None:
            sid = self._source_ids[source] = len(self._names)
            self._names.append(source)
        for index in wanted:
            sets[index].add(sid)

    def add_file(self, path: Path, tally: Tally) -> None:
        number = 0
        rest = b""
        for piece in chunks(path, tally):
            lines = (rest + piece).split(b"\n")
            rest = lines.pop()
            for line in lines:
                number += 1
                self._line(line, path, number, tally)
        if rest.strip():
            self._line(rest, path, number + 1, tally)

    def _line(self, line: bytes, path: Path, number: int, tally: Tally) -> None:
        text = line.strip()
        if not text:
            return
        if text[:1] == b"{":
            self._log_line(text, path, number, tally)
            return
        fields = text.split()
        try:
            if len(fields) != 4:
                raise ValueError
            day = fields[0].decode("ascii")
            tags = [int(t) for t in fields[2].split(b",")]
            if not _DAY.match(day) or int(fields[3]) < 0:
                raise ValueError
            source = fields[1].decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            tally.skip(BAD_LINE, f"{path}:{number}")
            return
        tally.ok()
        self.add(day, source, tags)

    def _log_line(self, text: bytes, path: Path, number: int, tally: Tally) -> None:
        try:
            record: Any = loads(text)
        except ValueError:
            tally.skip(BAD_JSON, f"{path}:{number}")
            return
        when = record.get("time") if isinstance(record, dict) else None
        source = record.get("src") if isinstance(record, dict) else None
        if not isinstance(when, str) or not isinstance(source, str):
            tally.skip(BAD_LOG, f"{path}:{number}")
            return
        day = when[:10]
        if not _DAY.match(day):
            tally.skip(BAD_LOG, f"{path}:{number}")
            return
        tally.ok()
        tags = signalled_tags(record)
        if tags:
            self.add(day, source, tags)

    def result(self) -> Telemetry:
        days = []
        count = len(self.keytags)
        first: dict[int, list[str | None]] = {}
        last: dict[int, list[str | None]] = {}
        seen: dict[int, list[int]] = {}
        for date in sorted(self._days):
            sets = self._days[date]
            union: set[int] = set().union(*sets)
            days.append(Day(date, tuple(len(s) for s in sets), len(union)))
            for index, members in enumerate(sets):
                for sid in members:
                    if sid not in seen:
                        first[sid] = [None] * count
                        last[sid] = [None] * count
                        seen[sid] = [0] * count
                    if first[sid][index] is None:
                        first[sid][index] = date  # dates come in order
                    last[sid][index] = date
                    seen[sid][index] += 1
        sources = tuple(
            SourceHistory(
                self._names[sid], tuple(first[sid]), tuple(last[sid]), tuple(seen[sid])
            )
            for sid in sorted(seen, key=lambda s: self._names[s])
        )
        return Telemetry(self.keytags, tuple(days), sources, self.signals)


def telemetry(
    paths: Iterable[Path], tally: Tally, keytags: Iterable[int] = DEFAULT_KEYTAGS
) -> Telemetry:
    """Read query logs and datasets under ``paths``; count per day and source."""
    counter = Counter8145(keytags)
    for path in input_files(paths):
        counter.add_file(path, tally)
    return counter.result()
