"""The report's plots, drawn with matplotlib's Agg canvas into PNG bytes.

Only ``matplotlib.figure.Figure`` on a ``FigureCanvasAgg`` is used, never
pyplot: no display is opened, no global figure state is kept, and the same
data gives the same bytes (the PNG carries no software version or time).
Every time axis is UTC and marks the events (the replay's phases and
restarts, ``--event``) as vertical lines.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from rootcanary.report import text
from rootcanary.report.model import DnskeySeries, Event, QueryLog, Report
from rootcanary.report.series import (
    MAX_FILLED_BUCKETS,
    ShareSeries,
    VantageTimeline,
    share_series,
    vantage_label,
    vantage_timeline,
)

#: Colours per state, the same in every report.
COLOURS: dict[str, str] = {
    "secure": "#2e7d32",
    "insecure": "#f9a825",
    "bogus": "#c62828",
    "unknown": "#bdbdbd",
    "Vnew": "#1565c0",
    "Vold": "#ef6c00",
    "Vind": "#6a1b9a",
    "nonV": "#9e9e9e",
    "other": "#6d4c41",
}
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
EVENT_STYLE = {
    "phase": ("#37474f", "--"),
    "restart": ("#8e24aa", ":"),
    "event": ("#000000", "-"),
}
#: Why a share plot has nothing to draw, by plot name.
_EMPTY = {
    "validation": "no vantage point has a classified bucket.",
    "anchor-sets": "no vantage point's trust anchors could be inferred (a "
    "sentinel-aware validator's Vnew or Vold is needed).",
    "anchors": "no complete sentinel test (is-ta, not-ta and a bogus name in one "
    "bucket) for this key tag.",
}
NO_LOG = (
    "this directory has no query log of our server (server/queries.jsonl); "
    "give one with --query-log FILE."
)
#: A raster row per vantage point only while it stays readable.
TIMELINE_LIMIT = 40
#: Sources drawn one by one in the DNSKEY plot; the rest are summed.
DNSKEY_SOURCES = 8
#: Event labels are written while there are at most this many events.
EVENT_LABELS = 16
WIDTH_INCHES = 11.0
LEGEND_INCHES = 2.2  # right of the plot area, for the legend
DPI = 100


@dataclass(frozen=True)
class Plot:
    """One figure: its PNG, or why there is none (``missing``)."""

    name: str  # file stem in report-files/
    title: str
    caption: str
    png: bytes | None
    missing: str | None = None


def make_plots(report: Report) -> tuple[Plot, ...]:
    """Every plot of the report, in reading order; the ones without data say why."""
    result = report.classification
    series = share_series(result, result.keytags)
    plots = [_share_plot(series[0], report.events)]
    timeline = vantage_timeline(result, TIMELINE_LIMIT)
    if timeline is not None:
        plots.append(_timeline_plot(timeline, report.events))
    if not result.keytags:
        plots.append(
            Plot(
                "anchors",
                "Trust-anchor states",
                "",
                None,
                "no RFC 8509 sentinel tests in the data (no is-ta/not-ta roles).",
            )
        )
    plots.extend(_share_plot(s, report.events) for s in series[1:])
    plots.append(_rfc8145_plot(report))
    plots.append(_dnskey_plot(report))
    return tuple(plots)


# -- drawing helpers -----------------------------------------------------------


def _figure(height: float = 3.8, left: float = 0.8) -> tuple[Figure, Axes]:
    """A figure whose plot area has fixed margins (inches), so that the time
    axes of all plots line up one under the other in the report."""
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=left / WIDTH_INCHES,
        right=1 - LEGEND_INCHES / WIDTH_INCHES,
        bottom=0.65 / height,
        top=1 - 0.35 / height,
    )
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _x(moment: datetime) -> float:
    """A time as matplotlib's date number (its stubs leave date2num untyped)."""
    return float(date2num(moment))  # type: ignore[no-untyped-call]


def _time_axis(axes: Axes) -> None:
    locator = AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlabel("time (UTC)")
    axes.grid(True, axis="y", alpha=0.3)


def _mark_events(axes: Axes, events: Sequence[Event]) -> None:
    labelled = len(events) <= EVENT_LABELS
    for event in events:
        colour, style = EVENT_STYLE.get(event.kind, EVENT_STYLE["event"])
        x = _x(event.time)
        axes.axvline(x, color=colour, linestyle=style, linewidth=1.2)
        if labelled:
            axes.text(
                x,
                0.98,
                f" {event.label}",
                transform=axes.get_xaxis_transform(),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color=colour,
                bbox={
                    "facecolor": "white",
                    "alpha": 0.75,
                    "edgecolor": "none",
                    "pad": 1.0,
                },
            )


def _legend(axes: Axes, *, reverse: bool = False) -> None:
    """Right of the plot; ``reverse`` lists a stack top first, as it is drawn."""
    handles, labels = axes.get_legend_handles_labels()
    if reverse:
        handles, labels = handles[::-1], labels[::-1]
    axes.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )


def _span(axes: Axes, x: Sequence[float], events: Sequence[Event]) -> None:
    """From the first bucket to the last, widened to show every event."""
    marks = [_x(event.time) for event in events]
    axes.set_xlim(min([x[0], *marks]), max([x[-1], *marks]))


def _edges(starts: Sequence[datetime], width: timedelta) -> list[float]:
    """Bucket edges as date numbers: every start, then the last bucket's end."""
    return [_x(s) for s in (*starts, starts[-1] + width)]


def _stepped(values: Sequence[float | None]) -> list[float]:
    """Values for a ``step="post"`` drawing: NaN gaps, the last value repeated."""
    out = [np.nan if v is None else v for v in values]
    return [*out, out[-1]]


# -- the plots -----------------------------------------------------------------


def _share_plot(series: ShareSeries, events: Sequence[Event]) -> Plot:
    caption = (
        f"Per {text.duration(series.bucket_seconds)} bucket, the share of the "
        "vantage points counted in it; gaps are buckets where none was."
    )
    if series.empty:
        why = _EMPTY.get(series.name, _EMPTY["anchors"])
        return Plot(series.name, series.title, caption, None, why)
    counted = [t for t in series.totals if t]
    caption += f" Vantage points per bucket: {min(counted)} to {max(counted)}."
    figure, axes = _figure()
    x = _edges(series.starts, timedelta(seconds=series.bucket_seconds))
    layers = [_stepped(series.shares(i)) for i in range(len(series.states))]
    colours = [
        COLOURS.get(state, PALETTE[i % len(PALETTE)])
        for i, state in enumerate(series.states)
    ]
    axes.stackplot(x, layers, labels=series.states, colors=colours, step="post")
    axes.set_ylim(0, 1)
    _span(axes, x, events)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("vantage points")
    axes.set_title(series.title, fontsize=10)
    _time_axis(axes)
    _mark_events(axes, events)
    _legend(axes, reverse=True)
    return Plot(series.name, series.title, caption, _png(figure))


def _timeline_plot(timeline: VantageTimeline, events: Sequence[Event]) -> Plot:
    title = "Validation state per vantage point"
    states = ("secure", "insecure", "bogus", "unknown")
    code = {state: i for i, state in enumerate(states)}
    grid = np.ma.masked_invalid(
        np.array(
            [
                [np.nan if s is None else code.get(s, code["unknown"]) for s in row]
                for row in timeline.states
            ],
            dtype=float,
        )
    )
    rows = len(timeline.labels)
    longest = max(len(label) for label in timeline.labels)
    # About 0.065 inch per character of an 8 pt label, but never less than
    # the other plots' margin so that the time axes still line up.
    figure, axes = _figure(1.2 + 0.28 * rows, left=max(0.8, 0.2 + 0.065 * longest))
    x = _edges(timeline.starts, timedelta(seconds=timeline.bucket_seconds))
    colours = ListedColormap([COLOURS[s] for s in states])
    axes.pcolormesh(
        x, np.arange(rows + 1), grid, cmap=colours, vmin=-0.5, vmax=len(states) - 0.5
    )
    axes.set_yticks(np.arange(rows) + 0.5, labels=timeline.labels, fontsize=8)
    axes.set_ylim(rows, 0)
    _span(axes, x, events)
    axes.set_title(title, fontsize=10)
    _time_axis(axes)
    axes.grid(False)
    _mark_events(axes, events)
    axes.legend(
        handles=[Patch(color=COLOURS[s], label=s) for s in states],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    caption = (
        "One row per vantage point, one cell per "
        f"{text.duration(timeline.bucket_seconds)} bucket; white: no bucket."
    )
    return Plot("vantage-points", title, caption, _png(figure))


def _rfc8145_plot(report: Report) -> Plot:
    name, title = "rfc8145", "RFC 8145 key-tag signals"
    log = report.query_log
    if log is None:
        return Plot(name, title, "", None, NO_LOG)
    periods = _rfc8145_periods(log)
    if periods is None:
        return Plot(
            name,
            title,
            "",
            None,
            "the query log holds no RFC 8145 signal (_ta- query or EDNS key tag "
            "option) for the key tags of interest "
            f"({', '.join(map(str, report.rfc8145_keytags))}).",
        )
    starts, width, holders, counted, period = periods
    figure, axes = _figure()
    x = _edges(starts, width)
    for index, tag in enumerate(report.rfc8145_keytags):
        shares = [
            h / n if n else None for h, n in zip(holders[index], counted, strict=True)
        ]
        axes.step(
            x,
            _stepped(shares),
            where="post",
            label=f"key tag {tag}",
            color=PALETTE[index % len(PALETTE)],
            linewidth=1.8,
        )
    axes.set_ylim(-0.02, 1.02)
    _span(axes, x, report.events)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("signalling sources")
    heading = f"{title}: share of signalling sources holding each key tag, per {period}"
    axes.set_title(heading, fontsize=10)
    _time_axis(axes)
    _mark_events(axes, report.events)
    _legend(axes)
    seen = [n for n in counted if n]
    caption = (
        f"Of the sources that signalled any key tag of interest ({min(seen)} to "
        f"{max(seen)} per {period}), the share that signalled each one; a source "
        "holding two keys counts for both."
    )
    if period != "day":
        caption += (
            " The log spans less than two days, so each bucket counts every source "
            "from its first signal on, with the set it signalled last."
        )
    return Plot(name, heading, caption, _png(figure))


_Periods = tuple[list[datetime], timedelta, list[list[int]], list[int], str]


def _rfc8145_periods(log: QueryLog) -> _Periods | None:
    """Per day when the log spans two days or more, else per bucket (held)."""
    days = log.per_day
    if len(days.days) >= 2 or log.held is None:
        if not any(d.any for d in days.days):
            return None
        return (
            [_day_start(d.date) for d in days.days],
            timedelta(days=1),
            [[d.counts[i] for d in days.days] for i in range(len(days.keytags))],
            [d.any for d in days.days],
            "day",
        )
    held = log.held
    if not any(held.sources):
        return None
    return (
        [datetime.fromtimestamp(s, UTC) for s in held.starts],
        timedelta(seconds=held.bucket_seconds),
        [list(row) for row in held.holders],
        list(held.sources),
        f"{text.duration(held.bucket_seconds)} bucket",
    )


def _day_start(label: str) -> datetime:
    return datetime.combine(date.fromisoformat(label), datetime.min.time(), UTC)


def _dnskey_plot(report: Report) -> Plot:
    name, title = "dnskey", "Root DNSKEY queries per source"
    log = report.query_log
    if log is None:
        return Plot(name, title, "", None, NO_LOG)
    series = log.dnskey
    if not series.sources:
        return Plot(name, title, "", None, "the query log holds no query for . DNSKEY.")
    starts = _dnskey_starts(series, log)
    index = {s: i for i, s in enumerate(starts)}
    width = series.bucket_seconds
    moments = [datetime.fromtimestamp(s, UTC) for s in starts]
    x = _edges(moments, timedelta(seconds=width))
    names = report.resolver_names()
    figure, axes = _figure()
    shown = series.sources[:DNSKEY_SOURCES]
    for number, source in enumerate(shown):
        values = [0.0] * len(starts)
        for start, count in series.counts[number]:
            values[index[start]] = count
        axes.step(
            x,
            _stepped(values),
            where="post",
            label=vantage_label(names[source], source) if source in names else source,
            color=PALETTE[number % len(PALETTE)],
            linewidth=1.5,
        )
    rest = series.sources[DNSKEY_SOURCES:]
    if rest:
        values = [0.0] * len(starts)
        for counts in series.counts[DNSKEY_SOURCES:]:
            for start, count in counts:
                values[index[start]] += count
        axes.step(
            x,
            _stepped(values),
            where="post",
            label=f"{len(rest)} other sources (sum)",
            color="#616161",
            linestyle="--",
        )
    bucket = text.duration(width)
    axes.set_ylim(bottom=0)
    _span(axes, x, report.events)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"queries per {bucket}")
    heading = f"{title} (. DNSKEY, per {bucket} bucket)"
    axes.set_title(heading, fontsize=10)
    _time_axis(axes)
    _mark_events(axes, report.events)
    _legend(axes)
    caption = (
        f"{series.queries} queries for the root's DNSKEY set from "
        f"{len(series.sources)} sources in the server's query log."
    )
    return Plot(name, heading, caption, _png(figure))


def _dnskey_starts(series: DnskeySeries, log: QueryLog) -> list[int]:
    """Buckets from the log's first line to its last: no query there is a zero."""
    width = series.bucket_seconds
    present = sorted({start for counts in series.counts for start, _ in counts})
    low, high = present[0], present[-1]
    if log.first is not None and log.last is not None:
        low = min(low, int(log.first.timestamp()) // width * width)
        high = max(high, int(log.last.timestamp()) // width * width)
    if (high - low) // width + 1 > MAX_FILLED_BUCKETS:
        return present
    return list(range(low, high + 1, width))
