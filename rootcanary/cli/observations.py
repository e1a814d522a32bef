"""``rootcanary observations``: print observations from results and campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from rootcanary.classify.roles import RoleMap, role_map_for
from rootcanary.cli.common import guarded, report_tally
from rootcanary.console import console
from rootcanary.errors import DataError
from rootcanary.observation import Observation, Tally, write_csv, write_jsonl
from rootcanary.readers.sources import Inputs, gather, read_observations, scenario_tests

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Observation files, raw RIPE Atlas results (JSON lines or arrays, "
        "optionally gzip) or campaign directories.",
        show_default=False,
    ),
]
RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="NAME=MEASUREMENT: the role a measurement plays (valid, "
        "bogus-sig, is-ta:38696, whoami, ...); repeatable. Manifest roles win.",
    ),
]
ZoneOpt = Annotated[
    str | None,
    typer.Option(help="Test zone that maps query names to roles."),
]
ScenarioOpt = Annotated[
    Path | None,
    typer.Option(
        help="Scenario file whose \\[tests] section gives the zone and key tags."
    ),
]


class ObservationFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def resolve(
    paths: list[Path],
    role: list[str] | None,
    zone: str | None,
    scenario: Path | None,
) -> tuple[Inputs, RoleMap, tuple[int, ...]]:
    """Inputs, roles and key tags from the arguments and the manifests found."""
    inputs = gather(paths)
    if not inputs.files:
        raise DataError("no data files found in " + ", ".join(str(p) for p in paths))
    scenario_zone, scenario_tags = scenario_tests(scenario) if scenario else (None, ())
    roles = role_map_for(inputs.roles, inputs.zone, role or (), zone, scenario_zone)
    return inputs, roles, scenario_tags or inputs.keytags


def with_progress(files: tuple[Path, ...], label: str) -> Iterator[Path]:
    """The files, with a progress bar by bytes on a terminal's stderr."""
    if not console.err.is_terminal or console.verbosity < 0:
        yield from files
        return
    sizes = [path.stat().st_size for path in files]
    with Progress(
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console.err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=sum(sizes))
        for path, size in zip(files, sizes, strict=True):
            yield path
            progress.advance(task, size)


def with_roles(
    observations: Iterator[Observation], roles: RoleMap
) -> Iterator[Observation]:
    """Fill in ``role`` where the observation has none and one can be found."""
    for observation in observations:
        if observation.role is None:
            role = roles.role(
                None, observation.measurement, observation.qname, observation.qtype
            )
            if role is not None:
                observation = replace(observation, role=role)
        yield observation


def register(app: typer.Typer) -> None:
    @app.command("observations")
    @guarded
    def observations(
        paths: PathsArg,
        output_format: Annotated[
            ObservationFormat,
            typer.Option("--format", "-f", help="Output format."),
        ] = ObservationFormat.jsonl,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Write here instead of stdout."),
        ] = None,
        role: RoleOpt = None,
        zone: ZoneOpt = None,
        scenario: ScenarioOpt = None,
    ) -> None:
        """Print one observation per response or failed attempt.

        Lines that cannot be read are counted by reason and reported on stderr.
        """
        inputs, roles, _ = resolve(paths, role, zone, scenario)
        tally = Tally()
        files = with_progress(inputs.files, "reading")
        stream = with_roles(read_observations(files, tally), roles)
        write = write_csv if output_format is ObservationFormat.csv else write_jsonl
        if output is None:
            write(stream, console.stdout)
        else:
            try:
                handle: IO[str] = output.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise DataError(f"{output}: cannot write: {exc.strerror}") from None
            with handle:
                write(stream, handle)
        report_tally(tally, "responses")
        if not tally.read and tally.total_skipped:
            raise DataError("nothing could be read (see the reasons above)")
