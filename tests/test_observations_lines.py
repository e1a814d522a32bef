"""Streaming JSON values out of files: arrays, lines, gzip members, damage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from rootcanary.observation import Tally
from rootcanary.readers.lines import CHUNK, describe, values


def _read(path: Path) -> tuple[list[object], Tally]:
    tally = Tally()
    return [value for _, value in values(path, tally)], tally


def test_a_large_array_is_read_element_by_element(tmp_path: Path) -> None:
    items = [{"n": i, "pad": "x" * 500} for i in range(3 * CHUNK // 500)]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(items, indent=1))
    found, tally = _read(path)
    assert found == items and tally.total_skipped == 0


def test_a_torn_array_keeps_what_came_before(tmp_path: Path) -> None:
    items = [{"n": i} for i in range(100)]
    path = tmp_path / "torn.json"
    path.write_text(json.dumps(items)[:-30])
    found, tally = _read(path)
    assert found == items[: len(found)] and 90 < len(found) < 100
    assert dict(tally.skipped) == {"torn last line": 1}


def test_gzip_members_in_a_row_and_arrays_on_lines(tmp_path: Path) -> None:
    path = tmp_path / "cat.jsonl.gz"
    path.write_bytes(
        gzip.compress(b'{"a": 1}\n') + gzip.compress(b'[{"a": 2}, {"a": 3}]\n')
    )
    tally = Tally()
    found = list(values(path, tally))
    assert [v for _, v in found] == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert [describe(w) for w, _ in found] == [
        f"{path}:1",
        f"{path}:2[0]",
        f"{path}:2[1]",
    ]


def test_corrupt_gzip_is_counted(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b'{"a": 1}\n' * 1000))
    data[10] = 0xFF  # the first deflate block: BTYPE 3 is invalid (RFC 1951 §3.2.3)
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(bytes(data))
    _, tally = _read(path)
    assert tally.skipped["corrupt gzip stream"] == 1


def test_bad_lines_in_the_middle_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"a": 1}\n\n   \n{bad\n{"a": 2}\n')
    found, tally = _read(path)
    assert found == [{"a": 1}, {"a": 2}]
    assert dict(tally.skipped) == {"bad JSON": 1}
    assert tally.examples["bad JSON"] == f"{path}:4"
