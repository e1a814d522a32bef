"""Stream JSON values out of files: JSON lines, JSON arrays, gzip or not.

The RIPE Atlas results API returns a JSON array (``format=json``) or JSON
lines (``format=txt``); campaigns store either, often gzipped. Files are read
in chunks and never held whole. A gzip stream cut short (a download that
died) and a torn last line are counted in the :class:`~rootcanary.observation.
Tally`, like every line that is not JSON, and reading goes on.
"""

from __future__ import annotations

import codecs
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orjson import loads  # parses Atlas results three times faster than json

from rootcanary.errors import DataError
from rootcanary.observation import Tally

CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# A JSON array element larger than this is taken as a broken file, not data.
_MAX_PENDING = 16 << 20

TRUNCATED_GZIP = "truncated gzip stream"
BAD_GZIP = "corrupt gzip stream"
TORN_LINE = "torn last line"
BAD_JSON = "bad JSON"
EMPTY_ARRAY = "empty JSON array"


def chunks(path: Path, tally: Tally) -> Iterator[bytes]:
    """The file's bytes, gunzipped when they start with the gzip magic.

    Several gzip members in a row (``cat a.gz b.gz``) are read one after the
    other (RFC 1952 §2.2).
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        first = handle.read(CHUNK)
        if first[:2] != _GZIP_MAGIC:
            while first:
                yield first
                first = handle.read(CHUNK)
            return
        yield from _gunzip(first, handle, path, tally)


def _gunzip(first: bytes, handle: Any, path: Path, tally: Tally) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits=31)
    data = first
    while True:
        if not data:
            data = handle.read(CHUNK)
            if not data:
                break
        try:
            out = inflater.decompress(data)
        except zlib.error as exc:
            tally.skip(BAD_GZIP, f"{path}: {exc}")
            return
        data = b""
        if out:
            yield out
        if inflater.eof:
            rest = inflater.unused_data
            if not rest.strip(b"\x00"):
                rest = handle.read(CHUNK)
                if not rest:
                    return
            inflater = zlib.decompressobj(wbits=31)
            data = rest
    tail = inflater.flush()
    if tail:
        yield tail
    if not inflater.eof:
        tally.skip(TRUNCATED_GZIP, str(path))


#: Where a value was read: (file, 1-based line or 0 inside a top-level
#: array, element index or -1 for a whole line). A plain tuple, formatted by
#: :func:`describe` only when something is reported: the hot path reads
#: millions of values and reports a handful.
Where = tuple[Path, int, int]


def describe(where: Where) -> str:
    path, line, index = where
    if line == 0:
        return f"{path}[{index}]"
    if index < 0:
        return f"{path}:{line}"
    return f"{path}:{line}[{index}]"


def values(path: Path, tally: Tally) -> Iterator[tuple[Where, Any]]:
    """Every JSON value in the file as ``(where, value)``; arrays are opened.

    A file whose first non-blank byte is ``[`` is read as a stream of JSON
    values (one big array, possibly spread over lines); any other file as
    JSON lines, where a line may itself hold an array.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        start = handle.peek(CHUNK)[:CHUNK]
        if start[:2] != _GZIP_MAGIC and start.lstrip()[:1] not in (b"[", b""):
            # Plain JSON lines, the common case: the file's own line
            # iterator is the fastest way through them.
            yield from _plain_lines(handle, path, tally)
            return
    stream = chunks(path, tally)
    head = b""
    for piece in stream:
        head += piece
        if head.strip():
            break
    if head.lstrip()[:1] == b"[":
        yield from _array_values(head, stream, path, tally)
    else:
        yield from _line_values(head, stream, path, tally)


def _plain_lines(handle: Any, path: Path, tally: Tally) -> Iterator[tuple[Where, Any]]:
    number = 0
    for line in handle:
        number += 1
        try:
            value = loads(line)
        except ValueError:
            if line.strip():
                # Only the last line can lack its newline: the writer died.
                reason = BAD_JSON if line.endswith(b"\n") else TORN_LINE
                tally.skip(reason, describe((path, number, -1)))
            continue
        if type(value) is list:
            yield from _opened(value, path, number, tally)
        else:
            yield (path, number, -1), value


def _line_values(
    head: bytes, stream: Iterator[bytes], path: Path, tally: Tally
) -> Iterator[tuple[Where, Any]]:
    rest = b""
    number = 0
    for piece in _prepend(head, stream):
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            try:
                value = loads(line)
            except ValueError:
                if line.strip():
                    tally.skip(BAD_JSON, describe((path, number, -1)))
                continue
            if type(value) is list:
                yield from _opened(value, path, number, tally)
            else:
                yield (path, number, -1), value
    if rest.strip():
        number += 1
        try:
            value = loads(rest)
        except ValueError:
            # No newline after it and not JSON: the writer died mid-line.
            tally.skip(TORN_LINE, describe((path, number, -1)))
            return
        if type(value) is list:
            yield from _opened(value, path, number, tally)
        else:
            yield (path, number, -1), value


def _prepend(first: bytes, stream: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from stream


def _opened(
    value: list[Any], path: Path, line: int, tally: Tally
) -> Iterator[tuple[Where, Any]]:
    if not value:
        # A line holding [] carries no record, but it is not one either.
        tally.skip(EMPTY_ARRAY, describe((path, line, -1)))
    for index, item in enumerate(value):
        yield (path, line, index), item


class _Text:
    """Decoded text of a byte stream, pulled in as the parser needs it."""

    def __init__(self, head: bytes, stream: Iterator[bytes]) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._stream = stream
        self.text = self._utf8.decode(head)
        self.pos = 0
        self.done = False

    def more(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at EOF."""
        if self.done:
            return False
        piece = next(self._stream, None)
        self.done = piece is None
        self.text = self.text[self.pos :] + self._utf8.decode(
            piece or b"", final=self.done
        )
        self.pos = 0
        return True


def _array_values(
    head: bytes, stream: Iterator[bytes], path: Path, tally: Tally
) -> Iterator[tuple[Where, Any]]:
    """Elements of top-level arrays, decoded one by one as the bytes arrive."""
    decode = json.JSONDecoder().raw_decode
    buf = _Text(head, stream)
    depth = index = 0
    while True:
        text, pos = buf.text, buf.pos
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        buf.pos = pos
        if pos >= len(text):
            if buf.more():
                continue
            break
        char = text[pos]
        if char in "[]" and depth == (char == "]"):
            depth = int(char == "[")
            buf.pos = pos + 1
            continue
        try:
            value, end = decode(text, pos)
        except ValueError:
            value, end = None, -1
        if end < 0 or (end == len(text) and not buf.done):
            # Maybe cut by the chunk boundary: read on, unless it is huge.
            if len(text) - pos < _MAX_PENDING and buf.more():
                continue
            if end < 0:
                reason = TORN_LINE if buf.done else BAD_JSON
                tally.skip(reason, describe((path, 0, index)))
                # Nothing after a broken element can be told apart reliably.
                return
        yield (path, 0, index), value
        index += 1
        buf.pos = end
    if depth:
        tally.skip(TORN_LINE, f"{describe((path, 0, index))}: array not closed")
