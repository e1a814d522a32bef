"""Raw Atlas results on disk: gzip JSON-lines part files, written atomically.

Layout::

    CAMPAIGN/results/<msm_id>/part-000003-1765000000-1765086399-n2400.jsonl.gz

One raw result object per line, as the API returned it. A part file appears
whole or not at all (written to a hidden temporary name, fsynced, renamed), so
its name can carry its sequence number, its first and last result timestamp
and its line count: what fetch resumes from and status counts is exactly what
is durably stored.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = "results"
_PART = re.compile(r"^part-(\d{6})-(\d+)-(\d+)-n(\d+)\.jsonl\.gz$")
_TEMP_PREFIX = ".part-"


@dataclass(frozen=True)
class Part:
    path: Path
    seq: int
    first: int
    last: int
    count: int


def results_dir(campaign: Path, msm_id: int) -> Path:
    return campaign / RESULTS / str(msm_id)


def parts(directory: Path) -> list[Part]:
    """The complete part files of one measurement, in sequence order."""
    out: list[Part] = []
    if not directory.is_dir():
        return out
    for path in directory.iterdir():
        match = _PART.match(path.name)
        if match:
            seq, first, last, count = (int(g) for g in match.groups())
            out.append(Part(path, seq, first, last, count))
    return sorted(out, key=lambda part: part.seq)


def remove_stale_temporaries(directory: Path) -> int:
    """Delete what an interrupted write left behind; how many were removed."""
    removed = 0
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name.startswith(_TEMP_PREFIX) and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def identity(record: Any) -> str:
    """A result's identity: the digest of its canonical JSON."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def timestamp(record: Any) -> int | None:
    value = record.get("timestamp") if isinstance(record, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_part(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def write_part(directory: Path, seq: int, records: Iterable[Any]) -> Part:
    """Write one part atomically; a crash leaves the part whole or absent."""
    rows = list(records)
    stamps = [t for t in (timestamp(r) for r in rows) if t is not None]
    first, last = (min(stamps), max(stamps)) if stamps else (0, 0)
    name = f"part-{seq:06d}-{first}-{last}-n{len(rows)}.jsonl.gz"
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw:
            # mtime=0: the same results give the same bytes.
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
                for row in rows:
                    line = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
                    handle.write(line.encode() + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return Part(directory / name, seq, first, last, len(rows))


def stored_count(campaign: Path, msm_id: int) -> int:
    return sum(part.count for part in parts(results_dir(campaign, msm_id)))
