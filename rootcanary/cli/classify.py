"""``rootcanary classify``: validation and trust-anchor states of resolvers."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer

from rootcanary.classify import Classification, classify_files
from rootcanary.classify import output as out
from rootcanary.classify.summary import tables
from rootcanary.cli.common import guarded, report_tally
from rootcanary.cli.observations import (
    PathsArg,
    RoleOpt,
    ScenarioOpt,
    ZoneOpt,
    resolve,
    with_progress,
)
from rootcanary.config import parse_duration
from rootcanary.console import console
from rootcanary.errors import ConfigError, DataError
from rootcanary.observation import Tally, parse_time


class ClassifyFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def _bucket_seconds(text: str) -> int:
    try:
        seconds = parse_duration(text) if not text.isdigit() else float(text)
    except ValueError as exc:
        raise ConfigError(f"--bucket: {exc}") from None
    if seconds < 1 or seconds != int(seconds):
        raise ConfigError(f"--bucket: a whole number of seconds, at least 1: {text}")
    return int(seconds)


def _write(result: Classification, fmt: ClassifyFormat, path: Path | None) -> int:
    if fmt is ClassifyFormat.parquet:
        if path is None:
            raise ConfigError("--format parquet needs --output PATH")
        return out.write_parquet(result, path)
    writer = out.write_csv if fmt is ClassifyFormat.csv else out.write_jsonl
    if path is None:
        return writer(result, console.stdout)
    try:
        handle: IO[str] = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot write: {exc.strerror}") from None
    with handle:
        return writer(result, handle)


def register(app: typer.Typer) -> None:
    @app.command("classify")
    @guarded
    def classify(
        paths: PathsArg,
        role: RoleOpt = None,
        zone: ZoneOpt = None,
        scenario: ScenarioOpt = None,
        keytag: Annotated[
            list[int] | None,
            typer.Option(
                "--keytag",
                help="Key tag for RFC 8509 states; repeatable (default: the "
                "scenario's, else every tag measured).",
            ),
        ] = None,
        bucket: Annotated[
            str, typer.Option(help="Time bucket: seconds or 15m, 1h, 1d.")
        ] = "1h",
        event: Annotated[
            str | None,
            typer.Option(
                help="Event time (ISO 8601 UTC or Unix seconds), e.g. the roll: "
                "adds per vantage point transitions and a recovery funnel."
            ),
        ] = None,
        output_format: Annotated[
            ClassifyFormat,
            typer.Option(
                "--format",
                "-f",
                help="table: summary on the terminal; jsonl/csv/parquet: one "
                "record per vantage point and bucket.",
            ),
        ] = ClassifyFormat.table,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Write the records here."),
        ] = None,
    ) -> None:
        """Classify resolvers: validation, trust anchors, algorithms, identity."""
        width = _bucket_seconds(bucket)
        moment = None
        if event is not None:
            try:
                moment = parse_time(int(event) if event.isdigit() else event)
            except ValueError as exc:
                raise ConfigError(f"--event: {exc}") from None
        if output is not None and output_format is ClassifyFormat.table:
            output_format = _format_from_suffix(output)
        inputs, roles, tags = resolve(paths, role, zone, scenario)
        tally = Tally()
        result = classify_files(
            with_progress(inputs.files, "classifying"),
            tally,
            roles=roles,
            bucket_seconds=width,
            keytags=keytag or tags,
            event=moment,
        )
        report_tally(tally, "responses")
        for reason, count in result.unusable:
            console.warn(f"{count} responses left out: {reason}")
        if not tally.read:
            raise DataError("no response could be read (see the reasons above)")
        if roles.zone is None and not inputs.roles and not role:
            console.warn("no test zone and no roles: give --zone, --role or a campaign")
        if output_format is ClassifyFormat.table:
            for table in tables(result):
                console.table(table)
            return
        count = _write(result, output_format, output)
        if output is not None:
            # The records went to the file: stdout is free for the summary.
            console.info(f"{count} records written to {output}")
            for table in tables(result):
                console.table(table)


def _format_from_suffix(path: Path) -> ClassifyFormat:
    suffix = path.suffix.lower().lstrip(".")
    for fmt in ClassifyFormat:
        if fmt.value == suffix and fmt is not ClassifyFormat.table:
            return fmt
    raise ConfigError(
        f"--output {path}: give --format jsonl, csv or parquet (or name the "
        "file .jsonl, .csv or .parquet)"
    )
