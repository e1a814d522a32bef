"""``rootcanary telemetry``: RFC 8145 key-tag signals per day and per source."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rootcanary.cli.common import guarded, report_tally
from rootcanary.console import console
from rootcanary.errors import ConfigError, DataError
from rootcanary.observation import Tally
from rootcanary.telemetry import DEFAULT_KEYTAGS, Telemetry, telemetry


class TelemetryFormat(StrEnum):
    table = "table"
    csv = "csv"


def _table(result: Telemetry) -> Table:
    table = Table(title="Distinct sources signalling each key tag (RFC 8145)")
    table.add_column("date")
    for tag in result.keytags:
        table.add_column(f"t{tag}", justify="right")
    table.add_column("tiana (any)", justify="right")
    for day in result.days:
        table.add_row(day.date, *map(str, day.counts), str(day.any))
    return table


def register(app: typer.Typer) -> None:
    @app.command("telemetry")
    @guarded
    def telemetry_command(
        paths: Annotated[
            list[Path],
            typer.Argument(
                help="Query logs of rootcanary serve and datasets of lines "
                "'date source keytag-list count'; files or folders (recursive).",
                show_default=False,
            ),
        ],
        keytag: Annotated[
            list[int] | None,
            typer.Option(
                "--keytag",
                help="Key tag of interest; repeatable "
                f"(default {' '.join(map(str, DEFAULT_KEYTAGS))}).",
            ),
        ] = None,
        output_format: Annotated[
            TelemetryFormat, typer.Option("--format", "-f", help="Output format.")
        ] = TelemetryFormat.table,
        sources: Annotated[
            Path | None,
            typer.Option(
                help="Also write per source the first and last day each key "
                "tag was signalled (CSV) to this file."
            ),
        ] = None,
    ) -> None:
        """Count per day the distinct sources signalling each key tag."""
        tags = tuple(keytag or DEFAULT_KEYTAGS)
        for tag in tags:
            if not 0 <= tag <= 65535:
                raise ConfigError(f"--keytag {tag}: key tags are 0..65535")
        tally = Tally()
        result = telemetry(paths, tally, tags)
        report_tally(tally, "lines")
        if not tally.read:
            raise DataError("no signal line could be read")
        if output_format is TelemetryFormat.csv:
            for line in result.csv_lines():
                console.data(line)
        else:
            console.table(_table(result))
            newest = tags[-1]
            never = result.never(newest)
            console.info(
                f"{len(result.sources)} sources signalled a key tag of interest; "
                f"{len(never)} of them never signalled {newest}"
            )
        if sources is not None:
            try:
                with sources.open("w", encoding="utf-8", newline="") as handle:
                    for line in result.source_csv_lines():
                        handle.write(line + "\n")
            except OSError as exc:
                raise DataError(f"{sources}: cannot write: {exc.strerror}") from None
            console.info(f"{len(result.sources)} sources written to {sources}")
