"""Shares of vantage points per state and time bucket, from a classification.

As in the figures of the IMC 2019 study of the 2018 root KSK roll ("Roll,
Roll, Roll your Root"): for each time bucket, the share of the vantage points
measured in it that were in each state. Validation states count every
vantage point with a bucket; trust-anchor states (RFC 8509 §3) count those
whose sentinel test was complete for the key tag; trust-anchor sets count
those whose anchors could be inferred. A bucket where none was counted is a
gap, not a zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rootcanary.classify import (
    TA_STATES,
    VALIDATION_STATES,
    Classification,
    VantagePoint,
)

#: Beyond this many buckets between the first and the last, only the buckets
#: with data are kept (no gaps are drawn) so that a stray old timestamp cannot
#: make the report build millions of empty buckets.
MAX_FILLED_BUCKETS = 20_000
#: Trust-anchor sets shown by name; the rarer ones are summed up.
MAX_ANCHOR_SETS = 6
OTHER_SETS = "other sets"
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class ShareSeries:
    """Counts per state and bucket, and how many were counted per bucket."""

    name: str  # file stem of its plot: validation, anchors-38696, anchor-sets
    title: str
    states: tuple[str, ...]
    starts: tuple[datetime, ...]  # bucket starts, ascending
    bucket_seconds: int
    counts: tuple[tuple[int, ...], ...]  # [state][bucket]
    totals: tuple[int, ...]  # [bucket]

    @property
    def empty(self) -> bool:
        return not any(self.totals)

    def shares(self, state: int) -> tuple[float | None, ...]:
        """The share of one state per bucket; None where nothing was counted."""
        return tuple(
            c / t if t else None
            for c, t in zip(self.counts[state], self.totals, strict=True)
        )


@dataclass(frozen=True)
class VantageTimeline:
    """One row per vantage point, its validation state per bucket (or None)."""

    labels: tuple[str, ...]
    starts: tuple[datetime, ...]
    bucket_seconds: int
    states: tuple[tuple[str | None, ...], ...]  # [vantage point][bucket]


def bucket_starts(result: Classification) -> tuple[int, ...]:
    """Every bucket start from the first to the last (epoch seconds)."""
    seen = sorted({int(b.start.timestamp()) for b in result.buckets})
    if not seen:
        return ()
    width = result.bucket_seconds
    if (seen[-1] - seen[0]) // width + 1 > MAX_FILLED_BUCKETS:
        return tuple(seen)
    return tuple(range(seen[0], seen[-1] + 1, width))


def share_series(
    result: Classification, keytags: tuple[int, ...]
) -> tuple[ShareSeries, ...]:
    """Validation, then trust-anchor states per key tag, then anchor sets."""
    starts = bucket_starts(result)
    index = {start: i for i, start in enumerate(starts)}
    width = len(starts)
    validation = [[0] * width for _ in VALIDATION_STATES]
    v_index = {state: i for i, state in enumerate(VALIDATION_STATES)}
    anchors = {tag: [[0] * width for _ in TA_STATES] for tag in keytags}
    a_index = {state: i for i, state in enumerate(TA_STATES)}
    sets: dict[str, list[int]] = {}
    for bucket in result.buckets:
        column = index[int(bucket.start.timestamp())]
        validation[v_index.get(bucket.validation, v_index["unknown"])][column] += 1
        for state in bucket.trust_anchors:
            rows = anchors.get(state.keytag)
            if rows is not None and state.state is not None:
                rows[a_index.get(state.state, a_index["other"])][column] += 1
        held = bucket.anchor_set
        if held.holds or held.lacks:
            row = sets.get(held.describe())
            if row is None:
                row = sets[held.describe()] = [0] * width
            row[column] += 1
    moments = tuple(datetime.fromtimestamp(s, UTC) for s in starts)
    out = [
        _series(
            "validation",
            "Validation state (share of vantage points)",
            VALIDATION_STATES,
            validation,
            moments,
            result.bucket_seconds,
        )
    ]
    for tag in keytags:
        out.append(
            _series(
                f"anchors-{tag}",
                f"Trust-anchor state for key tag {tag} (RFC 8509, share of "
                "vantage points with a complete sentinel test)",
                TA_STATES,
                anchors[tag],
                moments,
                result.bucket_seconds,
            )
        )
    out.append(_anchor_sets(sets, moments, result.bucket_seconds))
    return tuple(out)


def _series(
    name: str,
    title: str,
    states: tuple[str, ...],
    rows: list[list[int]],
    starts: tuple[datetime, ...],
    bucket_seconds: int,
) -> ShareSeries:
    return ShareSeries(
        name=name,
        title=title,
        states=states,
        starts=starts,
        bucket_seconds=bucket_seconds,
        counts=tuple(tuple(row) for row in rows),
        totals=tuple(sum(row[i] for row in rows) for i in range(len(starts))),
    )


def _anchor_sets(
    sets: dict[str, list[int]], starts: tuple[datetime, ...], bucket_seconds: int
) -> ShareSeries:
    ranked = sorted(sets, key=lambda name: (-sum(sets[name]), name))
    labels = ranked[:MAX_ANCHOR_SETS]
    rows = [sets[name] for name in labels]
    rest = ranked[MAX_ANCHOR_SETS:]
    if rest:
        labels.append(OTHER_SETS)
        rows.append([sum(sets[name][i] for name in rest) for i in range(len(starts))])
    return _series(
        "anchor-sets",
        "Trust anchors held (share of vantage points whose set could be "
        "inferred from the sentinel tests)",
        tuple(labels),
        rows,
        starts,
        bucket_seconds,
    )


def vantage_timeline(result: Classification, limit: int) -> VantageTimeline | None:
    """Validation state per vantage point and bucket; None beyond ``limit`` rows."""
    points = result.vantage_points
    if not points or len(points) > limit:
        return None
    starts = bucket_starts(result)
    index = {start: i for i, start in enumerate(starts)}
    grid: dict[VantagePoint, list[str | None]] = {
        vp: [None] * len(starts) for vp in points
    }
    for bucket in result.buckets:
        grid[bucket.vantage][index[int(bucket.start.timestamp())]] = bucket.validation
    return VantageTimeline(
        labels=tuple(vantage_label(vp.probe, vp.resolver) for vp in points),
        starts=tuple(datetime.fromtimestamp(s, UTC) for s in starts),
        bucket_seconds=result.bucket_seconds,
        states=tuple(tuple(grid[vp]) for vp in points),
    )


def vantage_label(probe: str, resolver: str | None) -> str:
    """``unbound (127.0.1.1)``, or the probe alone when it is the resolver."""
    if resolver is None or resolver == probe:
        return probe
    return f"{probe} ({resolver})"
