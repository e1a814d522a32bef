"""Classification records on disk: JSON lines, CSV and Parquet.

One record per vantage point and time bucket, in the order of
:attr:`Classification.buckets`. The columns (README, "classify output"):

``platform, probe, resolver, bucket, bucket_seconds, validation, ad_valid,
ad_bogus, ede, responses, flags, holds, lacks, upstream`` then, per key tag,
``ta_<tag>`` and ``ta_<tag>_pattern``, per algorithm zone ``alg_<zone>``,
and with an event ``phase, before, after, funnel, recovery_s``. JSON lines
nest the per-tag and per-zone values (``"ta": {"38696": "Vnew"}``) instead.
Same input, same bytes: keys, rows and list items are all in a fixed order.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rootcanary.classify.model import BucketState, Classification, Transition
from rootcanary.errors import ReportError
from rootcanary.observation import csv_cell, format_time

FORMATS = ("jsonl", "csv", "parquet")
_EVENT_COLUMNS = ("phase", "before", "after", "funnel", "recovery_s")


def algorithm_zones(result: Classification) -> tuple[str, ...]:
    return tuple(
        sorted({alg.zone for bucket in result.buckets for alg in bucket.algorithms})
    )


def _transitions(result: Classification) -> dict[Any, Transition]:
    return {t.vantage: t for t in result.transitions}


def records(result: Classification) -> Iterator[dict[str, Any]]:
    """The nested record of each bucket (the JSON-lines form)."""
    moves = _transitions(result)
    for bucket in result.buckets:
        yield _record(bucket, result, moves.get(bucket.vantage))


def _record(
    bucket: BucketState, result: Classification, move: Transition | None
) -> dict[str, Any]:
    vantage, evidence = bucket.vantage, bucket.evidence
    out: dict[str, Any] = {
        "platform": vantage.platform,
        "probe": vantage.probe,
        "resolver": vantage.resolver,
        "bucket": format_time(bucket.start),
        "bucket_seconds": result.bucket_seconds,
        "validation": bucket.validation,
        "ad_valid": evidence.ad_valid,
        "ad_bogus": evidence.ad_bogus,
        "ede": list(evidence.ede),
        "responses": [ev.summary() for ev in evidence.responses],
        "flags": list(bucket.flags),
        "holds": list(bucket.anchor_set.holds),
        "lacks": list(bucket.anchor_set.lacks),
        "upstream": list(bucket.upstream),
        "ta": {str(s.keytag): s.state for s in bucket.trust_anchors},
        "ta_pattern": {str(s.keytag): s.pattern for s in bucket.trust_anchors},
        "alg": {alg.zone: alg.state for alg in bucket.algorithms},
    }
    if result.event is not None:
        out["phase"] = bucket.phase
        out["before"] = move.before if move else None
        out["after"] = move.after if move else None
        out["funnel"] = move.funnel if move else None
        out["recovery_s"] = move.recovery_seconds if move else None
    return out


def flat_columns(result: Classification) -> list[str]:
    columns = [
        "platform",
        "probe",
        "resolver",
        "bucket",
        "bucket_seconds",
        "validation",
        "ad_valid",
        "ad_bogus",
        "ede",
        "responses",
        "flags",
        "holds",
        "lacks",
        "upstream",
    ]
    for tag in result.keytags:
        columns += [f"ta_{tag}", f"ta_{tag}_pattern"]
    columns += [f"alg_{zone}" for zone in algorithm_zones(result)]
    if result.event is not None:
        columns += list(_EVENT_COLUMNS)
    return columns


def flat_records(result: Classification) -> Iterator[dict[str, Any]]:
    """Records with one column per key tag and algorithm zone (CSV, Parquet)."""
    zones = algorithm_zones(result)
    for record in records(result):
        ta, patterns, alg = (
            record.pop("ta"),
            record.pop("ta_pattern"),
            record.pop("alg"),
        )
        phase: dict[str, Any] = {
            k: record.pop(k) for k in _EVENT_COLUMNS if k in record
        }
        for tag in result.keytags:
            record[f"ta_{tag}"] = ta.get(str(tag))
            record[f"ta_{tag}_pattern"] = patterns.get(str(tag))
        for zone in zones:
            record[f"alg_{zone}"] = alg.get(zone)
        record.update(phase)
        yield record


def write_jsonl(result: Classification, out: IO[str]) -> int:
    count = 0
    for record in records(result):
        out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def write_csv(result: Classification, out: IO[str]) -> int:
    """CSV; lists are joined with ``;``, booleans are true/false, null empty."""
    writer = csv.writer(out, lineterminator="\n")
    columns = flat_columns(result)
    writer.writerow(columns)
    count = 0
    for record in flat_records(result):
        writer.writerow([csv_cell(record[name]) for name in columns])
        count += 1
    return count


def write_parquet(result: Classification, path: Path) -> int:
    """Parquet with typed columns: lists stay lists, counts stay integers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = flat_columns(result)
    types: dict[str, Any] = {
        "bucket_seconds": pa.int64(),
        "ad_valid": pa.bool_(),
        "ad_bogus": pa.bool_(),
        "ede": pa.list_(pa.int32()),
        "responses": pa.list_(pa.string()),
        "flags": pa.list_(pa.string()),
        "holds": pa.list_(pa.int32()),
        "lacks": pa.list_(pa.int32()),
        "upstream": pa.list_(pa.string()),
        "recovery_s": pa.int64(),
    }
    data: dict[str, list[Any]] = {name: [] for name in columns}
    for record in flat_records(result):
        for name in columns:
            data[name].append(record[name])
    schema = pa.schema([(name, types.get(name, pa.string())) for name in columns])
    table = pa.table(data, schema=schema)
    try:
        pq.write_table(table, path, compression="zstd")
    except OSError as exc:
        raise ReportError(f"{path}: cannot write Parquet: {exc}") from None
    return int(table.num_rows)
