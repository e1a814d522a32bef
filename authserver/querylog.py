"""The query log: one JSON line per query (format: briefs/querylog.md).

Lines are collected in memory and written with one ``write(2)`` per batch on
an ``O_APPEND`` descriptor, at least once a second. Each batch holds whole
lines only, so a crash (even ``kill -9``) can lose at most the unwritten
second and tear at most the last line; worker processes appending to the
same file never interleave inside a line.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from pathlib import Path

import dns.rdataclass
import dns.rdatatype

from rootcanary.errors import ServerError

log = logging.getLogger("authserver.querylog")

FLUSH_SECONDS = 1.0
MAX_PENDING = 20000  # lines; bounds memory under a flood between flushes

_SAFE_LABEL = re.compile(rb"^[A-Za-z0-9_*-]*$")
_ESCAPED = frozenset(b'."\\()@$;')


class QueryLog:
    """Batched, append-only writer of query-log lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ServerError(
                f"{path}: cannot open the query log: {exc.strerror or exc}"
            ) from None
        self.pending: list[str] = []
        self._last = time.monotonic()
        self.written = 0
        self.lost = 0  # lines that could not be written (disk full, I/O error)
        self._warned = 0.0

    def add(self, line: str) -> None:
        self.pending.append(line)
        if len(self.pending) >= MAX_PENDING:
            self.flush()

    def due(self, now: float) -> bool:
        """Time to write: a second since the last write, or many lines waiting."""
        return now - self._last >= FLUSH_SECONDS or len(self.pending) >= MAX_PENDING

    def flush(self) -> None:
        self._last = time.monotonic()
        if not self.pending:
            return
        data = "".join(self.pending).encode("utf-8")
        count = len(self.pending)
        self.pending.clear()
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            # Answering goes on; the loss is counted, warned about at most
            # once a minute, and reported when the server stops.
            self.lost += count
            if self._last - self._warned >= 60:
                self._warned = self._last
                log.error(
                    "%s: cannot write the query log: %s", self.path, exc.strerror or exc
                )
            return
        self.written += count

    def reopen(self) -> None:
        """Flush, then open the path again (after log rotation, on SIGHUP)."""
        self.flush()
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


class Clock:
    """``2026-12-03T17:49:53.123456Z`` quickly: the seconds part changes rarely."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


def name_text(wire: bytes) -> str:
    """Presentation form of an uncompressed wire name, case kept (RFC 4343 §2.1).

    Escapes like dnspython's ``to_text``: ``\\.`` and friends for special
    characters, ``\\DDD`` for bytes outside printable ASCII.
    """
    labels = []
    pos = 0
    while pos < len(wire):
        length = wire[pos]
        if length == 0:
            break
        label = wire[pos + 1 : pos + 1 + length]
        pos += length + 1
        if _SAFE_LABEL.match(label):
            labels.append(label.decode("ascii"))
            continue
        out = []
        for byte in label:
            if byte in _ESCAPED:
                out.append("\\" + chr(byte))
            elif 0x20 < byte < 0x7F:
                out.append(chr(byte))
            else:
                out.append(f"\\{byte:03d}")
        labels.append("".join(out))
    return ".".join(labels) + "."


_SAFE_TEXT = re.compile(rb"[A-Za-z0-9_*.-]*")


def name_json(wire: bytes) -> str:
    """:func:`name_text` as a JSON string, quickly for ordinary names."""
    parts = []
    pos = 0
    length = wire[0]
    while length:
        parts.append(wire[pos + 1 : pos + 1 + length])
        pos += length + 1
        length = wire[pos]
    text = b".".join(parts)
    if _SAFE_TEXT.fullmatch(text):
        # Nothing to escape, in DNS presentation or in JSON.
        return f'"{text.decode("ascii")}."'
    return json.dumps(name_text(wire))


@functools.cache
def type_text(value: int) -> str:
    return dns.rdatatype.to_text(value)  # type: ignore[arg-type]


@functools.cache
def class_text(value: int) -> str:
    return dns.rdataclass.to_text(value)  # type: ignore[arg-type]


def ta_tags(lname: bytes) -> list[int] | None:
    """Key tags of an RFC 8145 §5.1 ``_ta-xxxx[-yyyy...]`` first label, or None."""
    length = lname[0] if lname else 0
    if length < 8 or lname[1:5] != b"_ta-":
        return None
    parts = lname[5 : 1 + length].split(b"-")
    tags = []
    for part in parts:
        if len(part) != 4:
            return None
        try:
            tags.append(int(part, 16))
        except ValueError:
            return None
    return tags


def dumps(value: object) -> str:
    return json.dumps(value)


_RCODES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    9: "NOTAUTH",
    16: "BADVERS",
}


def rcode_text(value: int) -> str:
    return _RCODES.get(value, str(value))


def tail(rcode: int | None, size: int, tc: bool, zone: str | None) -> str:
    """The response half of a line: rcode, size, tc and zone."""
    return (
        f'"rcode": {dumps(rcode_text(rcode) if rcode is not None else None)}, '
        f'"size": {size}, "tc": {"true" if tc else "false"}, "zone": {dumps(zone)}'
    )
