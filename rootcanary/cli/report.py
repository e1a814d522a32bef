"""``rootcanary report``: plots and one self-contained HTML file."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rootcanary.cli.common import guarded
from rootcanary.config import parse_duration
from rootcanary.console import console, sanitize
from rootcanary.errors import ConfigError
from rootcanary.observation import parse_time
from rootcanary.report import ReportOptions, build_report, files_dir, write_report
from rootcanary.report.model import InputCount, Report
from rootcanary.report.write import DEFAULT_NAME


class ReportFormat(StrEnum):
    html = "html"


def parse_bucket(text: str) -> int | None:
    """``auto`` (None), whole seconds, or a duration such as ``30s``, ``1h``."""
    if text.strip().lower() == "auto":
        return None
    try:
        seconds = float(text) if text.isdigit() else parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--bucket: {exc}") from None
    if seconds < 1 or seconds != int(seconds):
        raise ConfigError(f"--bucket: a whole number of seconds, at least 1: {text}")
    return int(seconds)


def parse_event(text: str) -> datetime:
    try:
        return parse_time(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise ConfigError(f"--event: {exc}") from None


def _say(counts: InputCount) -> None:
    line = f"{counts.read} {counts.noun} read, {counts.total_skipped} skipped"
    if counts.total_skipped:
        console.warn(line)
        for reason, number, where in counts.skipped:
            at = f" (first at {where})" if where else ""
            console.info(sanitize(f"  {number} {reason}{at}"))
    else:
        console.info(line)


def _summarise(report: Report) -> None:
    for counts in report.inputs:
        _say(counts)
    for reason, count in report.classification.unusable:
        console.warn(f"{count} responses left out: {reason}")
    replay = report.replay
    if replay is not None:
        bad = [v.resolver for v in replay.verdicts if v.ok is False]
        if bad:
            console.warn(
                sanitize(
                    f"{len(bad)} resolver(s) did not behave as expected: "
                    + ", ".join(bad)
                )
            )


def register(app: typer.Typer) -> None:
    @app.command("report")
    @guarded
    def report(
        directory: Annotated[
            Path,
            typer.Argument(
                help="A campaign directory (any backend) or a replay run "
                "directory of rootcanary testbed run.",
                show_default=False,
            ),
        ],
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help=f"The HTML file (default: DIR/{DEFAULT_NAME}); its PNG "
                "files go to NAME-files/ beside it.",
            ),
        ] = None,
        bucket: Annotated[
            str,
            typer.Option(
                help="Time bucket: seconds or 30s, 15m, 1h, 1d; auto: about 120 "
                "over a replay, else 1h."
            ),
        ] = "auto",
        event: Annotated[
            list[str] | None,
            typer.Option(
                help="Event time to mark (ISO 8601 UTC or Unix seconds); "
                "repeatable. The first gives the funnel (default for a replay: "
                "its roll).",
            ),
        ] = None,
        keytag: Annotated[
            list[int] | None,
            typer.Option(
                help="Key tag for the trust-anchor and RFC 8145 plots; "
                "repeatable (default: the replay's keys, else the campaign's).",
            ),
        ] = None,
        output_format: Annotated[
            ReportFormat,
            typer.Option(
                "--format",
                "-f",
                help="html: one self-contained file, plus the PNG files.",
            ),
        ] = ReportFormat.html,
        zone: Annotated[
            str | None,
            typer.Option(help="Test zone, when no manifest names one."),
        ] = None,
        query_log: Annotated[
            list[Path] | None,
            typer.Option(
                "--query-log",
                help="A query log of rootcanary serve to read as well "
                "(RFC 8145 signals, DNSKEY rates); repeatable.",
            ),
        ] = None,
    ) -> None:
        """Plots and a self-contained HTML report of a campaign or replay run.

        Prints the HTML file's path on stdout.
        """
        tags = tuple(keytag or ())
        for tag in tags:
            if not 0 <= tag <= 65535:
                raise ConfigError(f"--keytag {tag}: key tags are 0..65535")
        for path in query_log or ():
            if not path.is_file():
                raise ConfigError(f"--query-log {path}: no such file")
        options = ReportOptions(
            bucket_seconds=parse_bucket(bucket),
            events=tuple(parse_event(t) for t in event or ()),
            keytags=tags,
            zone=zone,
            query_logs=tuple(query_log or ()),
        )
        built = build_report(directory, options)
        _summarise(built)
        target = output or directory / DEFAULT_NAME
        written = write_report(built, target)
        for plot in written.missing:
            console.detail(f"no {plot.name} plot: {plot.missing}")
        console.info(
            f"{len(written.pngs)} plots in {files_dir(target)}, "
            f"{len(written.missing)} without data"
        )
        console.data(str(written.html))
