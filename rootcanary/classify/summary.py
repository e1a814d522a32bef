"""The terminal summary of a classification: counts and shares as rich tables.

Every vantage point counts once, with its latest known state (its last bucket
with a validation state other than unknown; per key tag, its last bucket
where the sentinel test was complete). Text from the network (addresses,
probe ids) is sanitised before it reaches the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.table import Table

from rootcanary.classify.model import (
    ALGORITHM_STATES,
    FUNNEL_CLASSES,
    TA_STATES,
    VALIDATION_STATES,
    BucketState,
    Classification,
    VantagePoint,
)
from rootcanary.console import sanitize


def _share(count: int, total: int) -> str:
    if not total:
        return "0"
    return f"{count} ({100 * count / total:.1f}%)"


def validation_table(result: Classification) -> Table:
    latest = result.latest()
    table = Table(title="Validation (vantage points, latest known state)")
    table.add_column("platform")
    for state in VALIDATION_STATES:
        table.add_column(state, justify="right")
    table.add_column("total", justify="right")
    by_platform: dict[str, Counter[str]] = {}
    for vantage, bucket in latest.items():
        by_platform.setdefault(vantage.platform, Counter())[bucket.validation] += 1
    overall: Counter[str] = Counter()
    for platform in sorted(by_platform):
        counts = by_platform[platform]
        overall.update(counts)
        total = sum(counts.values())
        table.add_row(
            sanitize(platform),
            *(_share(counts[s], total) for s in VALIDATION_STATES),
            str(total),
        )
    if len(by_platform) > 1:
        total = sum(overall.values())
        table.add_row(
            "all", *(_share(overall[s], total) for s in VALIDATION_STATES), str(total)
        )
    return table


def latest_anchor_states(
    result: Classification,
) -> dict[int, dict[VantagePoint, str]]:
    """Per key tag, each vantage point's last complete RFC 8509 state."""
    out: dict[int, dict[VantagePoint, str]] = {tag: {} for tag in result.keytags}
    for bucket in result.buckets:
        for state in bucket.trust_anchors:
            if state.state is not None:
                out.setdefault(state.keytag, {})[bucket.vantage] = state.state
    return out


def trust_anchor_table(result: Classification) -> Table:
    table = Table(title="Trust anchors per key tag (RFC 8509 §3, vantage points)")
    table.add_column("key tag")
    for state in TA_STATES:
        table.add_column(state, justify="right")
    table.add_column("not measured", justify="right")
    vantage_points = {b.vantage for b in result.buckets}
    for tag, states in sorted(latest_anchor_states(result).items()):
        counts = Counter(states.values())
        total = len(vantage_points)
        table.add_row(
            str(tag),
            *(_share(counts[s], total) for s in TA_STATES),
            _share(total - len(states), total),
        )
    return table


def anchor_set_table(result: Classification) -> Table:
    table = Table(title="Inferred trust-anchor sets (vantage points)")
    table.add_column("trust anchors")
    table.add_column("vantage points", justify="right")
    latest: dict[VantagePoint, BucketState] = {}
    for bucket in result.buckets:
        if bucket.anchor_set.holds or bucket.anchor_set.lacks:
            latest[bucket.vantage] = bucket
    counts = Counter(b.anchor_set.describe() for b in latest.values())
    total = len({b.vantage for b in result.buckets})
    for text, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(text, _share(count, total))
    table.add_row("undetermined", _share(total - len(latest), total))
    return table


def flag_table(result: Classification) -> Table | None:
    seen: dict[str, set[VantagePoint]] = {}
    for bucket in result.buckets:
        for flag in bucket.flags:
            seen.setdefault(flag, set()).add(bucket.vantage)
    if not seen:
        return None
    table = Table(title="Flags (vantage points with the flag in any bucket)")
    table.add_column("flag")
    table.add_column("vantage points", justify="right")
    for flag, vps in sorted(seen.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        table.add_row(flag, str(len(vps)))
    return table


def algorithm_table(result: Classification) -> Table | None:
    latest: dict[str, dict[VantagePoint, str]] = {}
    for bucket in result.buckets:
        for alg in bucket.algorithms:
            if alg.state is not None:
                latest.setdefault(alg.zone, {})[bucket.vantage] = alg.state
    if not latest:
        return None
    table = Table(title="Algorithm support per zone (vantage points)")
    table.add_column("zone")
    for state in ALGORITHM_STATES:
        table.add_column(state, justify="right")
    for zone in sorted(latest):
        counts = Counter(latest[zone].values())
        total = sum(counts.values())
        table.add_row(zone, *(_share(counts[s], total) for s in ALGORITHM_STATES))
    return table


def upstream_table(result: Classification, limit: int = 10) -> Table | None:
    seen: dict[str, set[VantagePoint]] = {}
    for bucket in result.buckets:
        for address in bucket.upstream:
            seen.setdefault(address, set()).add(bucket.vantage)
    if not seen:
        return None
    table = Table(title="Upstream resolvers seen by our server (whoami)")
    table.add_column("upstream address")
    table.add_column("vantage points", justify="right")
    ranked = sorted(seen.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for address, vps in ranked[:limit]:
        table.add_row(sanitize(address), str(len(vps)))
    if len(ranked) > limit:
        table.add_row(f"... {len(ranked) - limit} more", "")
    return table


def funnel_table(result: Classification) -> Table | None:
    funnel = result.funnel
    if funnel is None:
        return None
    table = Table(title=f"Around the event at {funnel.event:%Y-%m-%d %H:%M:%S}Z")
    table.add_column("vantage points")
    table.add_column("count", justify="right")
    median = (
        f"{funnel.median_recovery_seconds / 3600:.1f} h median"
        if funnel.median_recovery_seconds is not None
        else "-"
    )
    rows = [
        ("measured", funnel.vantage_points, ""),
        ("always secure before", funnel.secure_before, ""),
        ("then bogus or insecure after", funnel.affected, ""),
        ("  recovered within an hour", funnel.recovered_within_hour, ""),
        ("  recovered later", funnel.recovered_later, median),
        ("  never recovered", funnel.never_recovered, ""),
    ]
    table.add_column("", justify="right")
    for label, count, note in rows:
        table.add_row(label, str(count), note)
    counts = Counter(t.funnel for t in result.transitions)
    rest = ", ".join(f"{c} {counts[c]}" for c in FUNNEL_CLASSES if counts[c])
    table.caption = rest
    return table


def tables(result: Classification) -> Iterable[Table]:
    """Every summary table that has something to show, in reading order."""
    yield validation_table(result)
    if result.keytags:
        yield trust_anchor_table(result)
        yield anchor_set_table(result)
    for table in (
        algorithm_table(result),
        flag_table(result),
        upstream_table(result),
        funnel_table(result),
    ):
        if table is not None:
            yield table
