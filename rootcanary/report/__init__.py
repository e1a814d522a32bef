"""Reports people can look at: plots and one self-contained HTML file.

Library use (``rootcanary report`` is a thin layer over this)::

    from rootcanary.report import ReportOptions, build_report, write_report

    report = build_report(Path("runs/ksk-2024"), ReportOptions(
        bucket_seconds=None,        # None: from the replay's length, else 1 h
        events=(),                  # datetimes to mark; the first anchors the funnel
        keytags=(),                 # default: the replay's keys or the campaign's
        zone=None,                  # test zone when no manifest names one
        query_logs=(),              # query logs beyond the directory's own
    ))
    written = write_report(report, Path("runs/ksk-2024/report.html"))
    written.html, written.pngs      # the page and report-files/*.png

    plots = make_plots(report)      # Plot(name, title, caption, png, missing)
    page = render_html(report, plots, generated=datetime.now(UTC))

:func:`build_report` reads a replay run directory (``replay.json``,
``campaign/``, ``server/queries.jsonl``), a campaign directory of any backend
or a folder of data files; it classifies with :mod:`rootcanary.classify` and
counts RFC 8145 signals with :mod:`rootcanary.telemetry`. The plots are drawn
on matplotlib's Agg canvas; the HTML embeds them as ``data:`` URIs and escapes
every string from the data. A section without data says why.
"""

from rootcanary.report.build import auto_bucket, build_report, locate
from rootcanary.report.html import render_html
from rootcanary.report.model import (
    CampaignInfo,
    DnskeySeries,
    Event,
    HeldSeries,
    InputCount,
    QueryLog,
    Replay,
    Report,
    ReportOptions,
    Verdict,
)
from rootcanary.report.plots import Plot, make_plots
from rootcanary.report.querylog import read_query_logs
from rootcanary.report.replay import load_replay
from rootcanary.report.series import ShareSeries, share_series
from rootcanary.report.write import Written, files_dir, write_report

__all__ = [
    "CampaignInfo",
    "DnskeySeries",
    "Event",
    "HeldSeries",
    "InputCount",
    "Plot",
    "QueryLog",
    "Replay",
    "Report",
    "ReportOptions",
    "ShareSeries",
    "Verdict",
    "Written",
    "auto_bucket",
    "build_report",
    "files_dir",
    "load_replay",
    "locate",
    "make_plots",
    "read_query_logs",
    "render_html",
    "share_series",
    "write_report",
]
