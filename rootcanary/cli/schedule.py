"""``rootcanary schedule``: turn a scenario into measurements on a backend."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rootcanary.cli import atlas_options
from rootcanary.cli.common import ScenarioArg, guarded
from rootcanary.cli.schedule_atlas import AtlasScheduleOptions, schedule_atlas
from rootcanary.cli.schedule_local import schedule_local
from rootcanary.cli.schedule_proxy import schedule_proxy
from rootcanary.config import parse_duration
from rootcanary.errors import ConfigError
from rootcanary.scenario import Scenario, load_scenario


class Backend(StrEnum):
    local = "local"
    atlas = "atlas"
    proxy = "proxy"


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def default_campaign_dir(scenario: Scenario, backend: str) -> Path:
    return Path("campaigns") / f"{scenario.name}-{backend}"


def pick_backend(scenario: Scenario, given: Backend | None) -> str:
    if given is not None:
        return given.value
    present = [
        name
        for name, section in (
            ("atlas", scenario.atlas),
            ("proxy", scenario.proxy),
            ("local", scenario.local),
        )
        if section is not None
    ]
    if len(present) == 1:
        return present[0]
    if not present:
        return "local"
    raise ConfigError(
        f"{scenario.path}: has sections for {', '.join(present)}: "
        "choose one with --backend"
    )


def register(app: typer.Typer) -> None:
    @app.command("schedule")
    @guarded
    def schedule(
        scenario_path: ScenarioArg,
        backend: Annotated[
            Backend | None,
            typer.Option(
                help="Where to measure (default: the scenario's only backend)."
            ),
        ] = None,
        campaign: Annotated[
            Path | None,
            typer.Option(
                "--campaign",
                "-o",
                help="Campaign directory (default: campaigns/<scenario>-<backend>).",
            ),
        ] = None,
        resolver: Annotated[
            list[str] | None,
            typer.Option(
                "--resolver",
                "-r",
                help="local: a resolver to probe, ADDR or ADDR:PORT (repeatable).",
            ),
        ] = None,
        once: Annotated[
            bool, typer.Option(help="local: one round, whatever the scenario says.")
        ] = False,
        interval: Annotated[
            str | None, typer.Option(help="local: time between rounds, e.g. 30s.")
        ] = None,
        duration: Annotated[
            str | None, typer.Option(help="local: how long to keep probing, e.g. 10m.")
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="Show what would be sent, with the cost; send nothing.",
            ),
        ] = False,
        output_format: Annotated[
            OutputFormat,
            typer.Option(
                "--format",
                help="Output on stdout: text, or json (the dry run: one JSON "
                "array of the request bodies).",
            ),
        ] = OutputFormat.text,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
        ] = False,
        key: atlas_options.KeyOption = None,
        server: atlas_options.ServerOption = None,
        ca_file: atlas_options.CaFileOption = None,
        probes_file: Annotated[
            Path | None,
            typer.Option(
                "--probes-file",
                help="atlas: a saved probe list (API JSON or RIPE archive dump) to "
                "split selections by, instead of reading the probe API.",
                show_default=False,
            ),
        ] = None,
        wait_for_slots: Annotated[
            str,
            typer.Option(
                "--wait-for-slots",
                help="atlas: how long to wait for free measurement slots when "
                "the account is at its limit (e.g. 30m); 0 stops instead.",
            ),
        ] = "0s",
        sessions: Annotated[
            int | None,
            typer.Option(min=1, help="proxy: exit sessions (default: the scenario's)."),
        ] = None,
    ) -> None:
        """Launch the scenario's measurements; record them in a campaign directory."""
        scenario = load_scenario(scenario_path)
        name = pick_backend(scenario, backend)
        directory = campaign or default_campaign_dir(scenario, name)
        if name == "local":
            schedule_local(
                scenario, directory, resolver or [], once, interval, duration
            )
            return
        if name == "atlas":
            try:
                wait = parse_duration(wait_for_slots)
            except ValueError as exc:
                raise ConfigError(f"--wait-for-slots: {exc}") from None
            schedule_atlas(
                scenario,
                directory,
                AtlasScheduleOptions(
                    dry_run=dry_run,
                    json_output=output_format is OutputFormat.json,
                    yes=yes,
                    key=key,
                    server=server,
                    ca_file=ca_file,
                    probes_file=probes_file,
                    wait_for_slots=wait,
                ),
            )
            return
        if name == "proxy":
            schedule_proxy(scenario, directory, sessions)
            return
        raise ConfigError(
            f"the {name} backend is not available in this version yet ({directory})"
        )
