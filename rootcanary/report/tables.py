"""The report's tables as plain data: a title, columns, rows of text cells.

Cells are unescaped text here; the HTML writer escapes every one of them,
because most come from the network or from files (DNS names, resolver names,
probe ids). A section whose table would be empty carries the reason instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from rootcanary.classify import FUNNEL_CLASSES, TA_STATES, VALIDATION_STATES
from rootcanary.classify.summary import latest_anchor_states
from rootcanary.report import text
from rootcanary.report.model import REPLAY, Report
from rootcanary.report.series import vantage_label

#: Rows beyond these are summed up in a last "... more" row.
MAX_VANTAGE_ROWS = 200
MAX_SIGNAL_ROWS = 300
MAX_SOURCE_ROWS = 25


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]
    flag: str | None = None  # "bad": a row to see at once (an unexpected outcome)


@dataclass(frozen=True)
class DataTable:
    """A table, or (``missing``) why there is none."""

    key: str  # HTML id
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...] = ()
    numeric: tuple[int, ...] = ()  # right-aligned column indexes
    note: str = ""
    missing: str | None = None


def _rows(*rows: tuple[str, ...]) -> tuple[Row, ...]:
    return tuple(Row(r) for r in rows)


def overview(report: Report) -> DataTable:
    """What the report covers, as key/value rows."""
    result = report.classification
    starts = [b.start for b in result.buckets]
    period = (
        f"{text.moment(min(starts))} to {text.moment(max(starts) + _width(report))}"
        if starts
        else "-"
    )
    rows = [
        ("directory", str(report.directory)),
        ("kind", _kind(report)),
        ("measured", period),
        ("vantage points", str(len(result.vantage_points))),
        ("responses classified", str(result.responses)),
        ("data files", str(len(report.data_files))),
        ("time bucket", text.duration(result.bucket_seconds)),
        ("key tags (RFC 8509)", ", ".join(map(str, result.keytags)) or "-"),
        ("key tags (RFC 8145)", ", ".join(map(str, report.rfc8145_keytags))),
        (
            "query log",
            ", ".join(str(p) for p in report.query_log.files)
            if report.query_log
            else "none",
        ),
        (
            "funnel event",
            f"{report.funnel_event.label} at {text.moment(report.funnel_event.time)}"
            if report.funnel_event
            else "none",
        ),
    ]
    return DataTable("overview", "Overview", ("", ""), _rows(*rows))


def overview_line(report: Report) -> str:
    """One line under the title: what this is and what it covers."""
    result = report.classification
    parts = [_kind(report), f"{len(result.vantage_points)} vantage points"]
    if result.buckets:
        first = min(b.start for b in result.buckets)
        last = max(b.start for b in result.buckets) + _width(report)
        parts.append(f"{text.moment(first)} to {text.moment(last)}")
    return " · ".join(parts)


def _width(report: Report) -> timedelta:
    return timedelta(seconds=report.classification.bucket_seconds)


def _kind(report: Report) -> str:
    if report.kind == REPLAY:
        return "rollover replay (testbed run)"
    if report.campaign is not None:
        return f"{report.kind} campaign"
    return "data files"


def verdicts(report: Report) -> DataTable:
    """The replay's verdict per resolver; contradictions flagged."""
    columns = (
        "resolver",
        "implementation",
        "variant",
        "address",
        "expected",
        "outcome",
        "as expected",
        "trusted new key",
        "secure through roll",
        "first bogus",
        "dropped revoked key",
        "notes",
    )
    replay = report.replay
    if replay is None:
        why = (
            "this run's replay.json is missing or unreadable (see Input)."
            if report.kind == REPLAY
            else "verdicts come from rollover replays (rootcanary testbed run); "
            "this is not one."
        )
        return DataTable("verdicts", "Verdicts per resolver", columns, missing=why)
    if not replay.verdicts:
        return DataTable(
            "verdicts",
            "Verdicts per resolver",
            columns,
            missing="replay.json has no verdicts (the run may still be going).",
        )
    start = replay.started
    rows = []
    for v in replay.verdicts:
        rows.append(
            Row(
                (
                    v.resolver,
                    v.implementation or "-",
                    v.variant or "-",
                    v.address or "-",
                    v.expected or "-",
                    v.outcome or "-",
                    _yes_no(v.ok),
                    _when(v.trusted_new_at, start),
                    _yes_no(v.secure_through_roll),
                    _when(v.first_bogus_at, start),
                    _when(v.dropped_revoked_at, start),
                    v.notes,
                ),
                flag="bad" if v.ok is False else None,
            )
        )
    good = sum(1 for v in replay.verdicts if v.ok)
    note = f"{good} of {len(replay.verdicts)} resolvers behaved as expected."
    return DataTable(
        "verdicts", "Verdicts per resolver", columns, tuple(rows), note=note
    )


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _when(value: datetime | None, start: datetime | None) -> str:
    if value is None:
        return "never"
    shift = text.offset(value, start)
    return f"{text.moment(value)} ({shift})" if shift else text.moment(value)


def funnel(report: Report) -> DataTable:
    """The classifier's funnel around the event (IMC 2019, the 2018 roll)."""
    result = report.classification
    title = "Around the event"
    columns = ("vantage points", "count", "")
    if result.funnel is None:
        return DataTable(
            "funnel",
            title,
            columns,
            missing="no event is known: give --event TIME (e.g. the roll) for the "
            "funnel of vantage points that were secure before it.",
        )
    f = result.funnel
    label = report.funnel_event.label if report.funnel_event else "event"
    median = (
        f"{f.median_recovery_seconds / 3600:.1f} h median"
        if f.median_recovery_seconds is not None
        else ""
    )
    rows = _rows(
        ("measured", str(f.vantage_points), ""),
        ("always secure before", str(f.secure_before), ""),
        ("then bogus or insecure after", str(f.affected), ""),
        ("recovered within an hour", str(f.recovered_within_hour), ""),
        ("recovered later", str(f.recovered_later), median),
        ("never recovered", str(f.never_recovered), ""),
    )
    counts = Counter(t.funnel for t in result.transitions)
    note = "By class: " + ", ".join(f"{c} {counts[c]}" for c in FUNNEL_CLASSES) + "."
    return DataTable(
        "funnel",
        f"{title}: {label} at {text.moment(f.event)}",
        columns,
        rows,
        numeric=(1,),
        note=note,
    )


def validation_counts(report: Report) -> DataTable:
    """Latest known validation state per vantage point, per platform."""
    result = report.classification
    columns = ("platform", *VALIDATION_STATES, "total")
    latest = result.latest()
    if not latest:
        return DataTable(
            "validation-counts",
            "Validation states",
            columns,
            missing="no vantage point was classified.",
        )
    by_platform: dict[str, Counter[str]] = {}
    for vantage, bucket in latest.items():
        by_platform.setdefault(vantage.platform, Counter())[bucket.validation] += 1
    rows = []
    overall: Counter[str] = Counter()
    for platform in sorted(by_platform):
        counts = by_platform[platform]
        overall.update(counts)
        rows.append(_count_row(platform, counts, VALIDATION_STATES))
    if len(by_platform) > 1:
        rows.append(_count_row("all", overall, VALIDATION_STATES))
    return DataTable(
        "validation-counts",
        "Validation states (vantage points, latest known state)",
        columns,
        tuple(rows),
        numeric=tuple(range(1, len(columns))),
    )


def _count_row(label: str, counts: Counter[str], states: tuple[str, ...]) -> Row:
    total = sum(counts.values())
    return Row((label, *(text.share(counts[s], total) for s in states), str(total)))


def anchor_counts(report: Report) -> DataTable:
    """Latest complete RFC 8509 state per vantage point, per key tag."""
    result = report.classification
    columns = ("key tag", *TA_STATES, "not measured")
    if not result.keytags:
        return DataTable(
            "anchor-counts",
            "Trust-anchor states",
            columns,
            missing="no RFC 8509 sentinel tests in the data.",
        )
    total = len(result.vantage_points)
    rows = []
    for tag, states in sorted(latest_anchor_states(result).items()):
        counts = Counter(states.values())
        rows.append(
            Row(
                (
                    str(tag),
                    *(text.share(counts[s], total) for s in TA_STATES),
                    text.share(total - len(states), total),
                )
            )
        )
    return DataTable(
        "anchor-counts",
        "Trust-anchor states per key tag (RFC 8509 §3, vantage points, latest "
        "complete test)",
        columns,
        tuple(rows),
        numeric=tuple(range(1, len(columns))),
    )


def vantage_points(report: Report) -> DataTable:
    """Each vantage point's latest state (the first MAX_VANTAGE_ROWS)."""
    result = report.classification
    tags = result.keytags
    columns = (
        "platform",
        "vantage point",
        "validation",
        *(f"key tag {t}" for t in tags),
        "trust anchors",
        "last bucket",
    )
    latest = result.latest()
    if not latest:
        return DataTable(
            "vantage-points",
            "Vantage points",
            columns,
            missing="no vantage point was classified.",
        )
    anchors = latest_anchor_states(result)
    rows = []
    for number, (vantage, bucket) in enumerate(latest.items()):
        if number == MAX_VANTAGE_ROWS:
            rows.append(
                Row(
                    (
                        f"... {len(latest) - MAX_VANTAGE_ROWS} more",
                        *[""] * (len(columns) - 1),
                    )
                )
            )
            break
        rows.append(
            Row(
                (
                    vantage.platform,
                    vantage_label(vantage.probe, vantage.resolver),
                    bucket.validation,
                    *(anchors.get(t, {}).get(vantage, "-") for t in tags),
                    bucket.anchor_set.describe(),
                    text.moment(bucket.start),
                ),
                flag="bad" if bucket.validation == "bogus" else None,
            )
        )
    return DataTable(
        "vantage-points",
        "Vantage points (latest known state)",
        columns,
        tuple(rows),
    )


def rfc8145_days(report: Report) -> DataTable:
    """Distinct sources per UTC day signalling each key tag (RFC 8145)."""
    tags = report.rfc8145_keytags
    columns = ("date", *(f"key tag {t}" for t in tags), "any of them")
    log = report.query_log
    if log is None:
        return DataTable(
            "rfc8145-days",
            "RFC 8145 signals per day",
            columns,
            missing="no query log of our server in this directory (give "
            "--query-log FILE).",
        )
    days = [d for d in log.per_day.days if d.any]
    if not days:
        return DataTable(
            "rfc8145-days",
            "RFC 8145 signals per day",
            columns,
            missing="the query log holds no signal for these key tags.",
        )
    rows = [
        Row((d.date, *(text.share(c, d.any) for c in d.counts), str(d.any)))
        for d in days
    ]
    newest = _newest_tag(report)
    never = len(log.per_day.never(newest)) if newest is not None else 0
    return DataTable(
        "rfc8145-days",
        "RFC 8145 signals per day (distinct sources)",
        columns,
        tuple(rows),
        numeric=tuple(range(1, len(columns))),
        note=f"{len(log.per_day.sources)} sources signalled a key tag of interest; "
        f"{never} of them never signalled {newest}."
        if newest is not None
        else "",
    )


def _newest_tag(report: Report) -> int | None:
    """The incoming key: the replay's new one, else the last tag of interest."""
    key = report.replay.key("new") if report.replay else None
    if key is not None and key.tag in report.rfc8145_keytags:
        return key.tag
    return report.rfc8145_keytags[-1] if report.rfc8145_keytags else None


def keytag_sets(report: Report) -> DataTable:
    """The replay's changes of each source's RFC 8145 key-tag set."""
    columns = ("time", "offset", "source", "key tags")
    replay = report.replay
    title = "RFC 8145 key-tag sets over time (changes per source)"
    if replay is None:
        return DataTable(
            "keytag-sets", title, columns, missing="only rollover replays record these."
        )
    if not replay.keytag_sets:
        return DataTable(
            "keytag-sets", title, columns, missing="replay.json records no change."
        )
    names = report.resolver_names()
    ordered = sorted(replay.keytag_sets, key=lambda k: (k.time, k.src))
    rows = []
    for number, item in enumerate(ordered):
        if number == MAX_SIGNAL_ROWS:
            rows.append(Row((f"... {len(ordered) - number} more", "", "", "")))
            break
        label = (
            vantage_label(names[item.src], item.src) if item.src in names else item.src
        )
        rows.append(
            Row(
                (
                    text.moment(item.time),
                    text.offset(item.time, replay.started),
                    label,
                    ", ".join(map(str, item.tags)) or "none",
                )
            )
        )
    return DataTable("keytag-sets", title, columns, tuple(rows))


def dnskey_phases(report: Report) -> DataTable:
    """The replay's root DNSKEY queries per source and phase."""
    columns = ("source", "phase", "queries", "seconds", "per minute")
    title = "Root DNSKEY queries per phase"
    replay = report.replay
    if replay is None or not replay.dnskey_rates:
        why = (
            "replay.json has no DNSKEY rates."
            if replay is not None
            else "only rollover replays have phases; see the sources below."
        )
        return DataTable("dnskey-phases", title, columns, missing=why)
    names = report.resolver_names()
    # Each source's phases in the order the run went through them.
    timeline = {p.state: i for i, p in enumerate(replay.phases)}
    first = {r.src: i for i, r in reversed(list(enumerate(replay.dnskey_rates)))}
    ordered = sorted(
        replay.dnskey_rates,
        key=lambda r: (first[r.src], timeline.get(r.phase, len(timeline)), r.phase),
    )
    rows = tuple(
        Row(
            (
                vantage_label(names[r.src], r.src) if r.src in names else r.src,
                r.phase,
                str(r.queries),
                "-" if r.seconds is None else f"{r.seconds:g}",
                "-" if r.per_minute is None else f"{r.per_minute:.2f}",
            )
        )
        for r in ordered
    )
    return DataTable("dnskey-phases", title, columns, rows, numeric=(2, 3, 4))


def dnskey_sources(report: Report) -> DataTable:
    """Root DNSKEY queries per source, from the query log."""
    columns = ("source", "queries", "peak per bucket", "per minute")
    title = "Root DNSKEY queries per source (query log)"
    log = report.query_log
    if log is None:
        return DataTable(
            "dnskey-sources",
            title,
            columns,
            missing="no query log of our server in this directory (give "
            "--query-log FILE).",
        )
    series = log.dnskey
    if not series.sources:
        return DataTable(
            "dnskey-sources", title, columns, missing="no query for . DNSKEY."
        )
    span = (
        (log.last - log.first).total_seconds()
        if log.first is not None and log.last is not None
        else 0.0
    )
    names = report.resolver_names()
    rows = []
    for number, source in enumerate(series.sources):
        if number == MAX_SOURCE_ROWS:
            rest = sum(series.totals[number:])
            more = len(series.sources) - number
            rows.append(Row((f"... {more} more sources", str(rest), "", "")))
            break
        total = series.totals[number]
        peak = max(count for _, count in series.counts[number])
        rate = f"{60 * total / span:.2f}" if span > 0 else "-"
        label = vantage_label(names[source], source) if source in names else source
        rows.append(Row((label, str(total), str(peak), rate)))
    return DataTable(
        "dnskey-sources",
        title,
        columns,
        tuple(rows),
        numeric=(1, 2, 3),
        note=f"Buckets of {text.duration(series.bucket_seconds)}; the rate is over "
        "the log's whole span.",
    )


def timeline(report: Report) -> DataTable:
    """The events marked on the plots, in time order."""
    columns = ("time", "offset", "event")
    if not report.events:
        return DataTable(
            "timeline",
            "Events",
            columns,
            missing="no event: give --event TIME to mark one (a replay marks its "
            "phases).",
        )
    start = report.replay.started if report.replay else None
    rows = _rows(
        *(
            (text.moment(e.time), text.offset(e.time, start), e.label)
            for e in report.events
        )
    )
    return DataTable("timeline", "Events", columns, rows)


def parameters(report: Report) -> DataTable:
    """The run's, the campaign's and the report's own parameters."""
    rows: list[tuple[str, str]] = []
    replay = report.replay
    if replay is not None:
        rows.append(("scenario", replay.scenario_name or "-"))
        if replay.scenario_path:
            rows.append(("scenario file", replay.scenario_path))
        rows.append(("started", text.moment(replay.started)))
        rows.append(("finished", text.moment(replay.finished)))
        rows.extend(replay.parameters)
        for key in replay.keys:
            parts = [
                f"slot {key.slot or '-'}",
                f"tag {key.tag if key.tag is not None else '-'}",
            ]
            if key.revoked_tag is not None:
                parts.append(f"revoked tag {key.revoked_tag}")
            rows.append((f"{key.role} key", ", ".join(parts)))
    campaign = report.campaign
    if campaign is not None:
        rows += [
            ("campaign", campaign.name),
            ("backend", campaign.backend),
            ("created", campaign.created),
            ("test zone", campaign.zone or "-"),
            ("measurements with a role", str(campaign.measurements)),
            ("backend entries", str(campaign.entries)),
        ]
        if campaign.scenario_path and replay is None:
            rows.append(("scenario file", campaign.scenario_path))
    options = report.options
    rows += [
        ("report: time bucket", text.duration(report.classification.bucket_seconds)),
        (
            "report: --keytag",
            ", ".join(map(str, options.keytags)) if options.keytags else "default",
        ),
        (
            "report: --event",
            ", ".join(text.moment(t) for t in options.events) or "none",
        ),
    ]
    return DataTable("parameters", "Parameters", ("parameter", "value"), _rows(*rows))


def inputs(report: Report) -> DataTable:
    """Records read and skipped per input, by reason."""
    rows = []
    for count in report.inputs:
        rows.append(Row((count.noun, "read", str(count.read), "")))
        for reason, number, where in count.skipped:
            rows.append(Row((count.noun, reason, str(number), where), flag="bad"))
    for reason, number in report.classification.unusable:
        rows.append(Row(("responses", f"left out: {reason}", str(number), "")))
    return DataTable(
        "input",
        "Input",
        ("input", "what", "count", "first at"),
        tuple(rows),
        numeric=(2,),
    )
