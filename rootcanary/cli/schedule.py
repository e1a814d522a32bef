"""``rootcanary schedule``: turn a scenario into measurements on a backend."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rootcanary.cli.common import ScenarioArg, guarded
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
    ) -> None:
        """Launch the scenario's measurements; record them in a campaign directory."""
        scenario = load_scenario(scenario_path)
        name = pick_backend(scenario, backend)
        directory = campaign or default_campaign_dir(scenario, name)
        raise ConfigError(
            f"the {name} backend is not available in this version yet ({directory})"
        )
