"""``rootcanary schedule``: turn a scenario into measurements on a backend."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rootcanary.backends.local import ProbeSettings, RoundResult, run_campaign
from rootcanary.backends.local_plan import resolve_targets, scenario_tests
from rootcanary.backends.proxy import Credentials, fetchable, run_proxy_campaign
from rootcanary.backends.proxy_plan import join_sources
from rootcanary.cli.common import ScenarioArg, guarded
from rootcanary.cli.proxy_progress import proxy_progress
from rootcanary.config import parse_duration
from rootcanary.console import console
from rootcanary.errors import ConfigError
from rootcanary.scenario import LocalSpec, Scenario, load_scenario


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
        if name == "proxy":
            schedule_proxy(scenario, directory, sessions)
            return
        raise ConfigError(f"the {name} backend is not available in this version yet")


def schedule_local(
    scenario: Scenario,
    directory: Path,
    resolvers: list[str],
    once: bool,
    interval_text: str | None,
    duration_text: str | None,
) -> None:
    spec = scenario.local or LocalSpec()
    interval = _seconds("--interval", interval_text, spec.interval)
    duration = _seconds("--duration", duration_text, spec.duration)
    if once:
        interval = None
    targets = resolve_targets(scenario, resolvers)
    tests = scenario_tests(scenario)
    assert scenario.tests is not None
    settings = ProbeSettings(
        timeout=spec.timeout,
        retries=spec.retries,
        bufsize=spec.bufsize,
        tcp_fallback=spec.tcp_fallback,
    )
    console.info(
        f"probing {len(targets)} resolver(s) with {len(tests)} tests"
        + (f" every {interval:g} s" if interval else " once")
        + (f" for {duration:g} s" if interval and duration else "")
    )

    def progress(result: RoundResult) -> None:
        console.info(
            f"round {result.number}: {len(result.observations)} responses, "
            f"{result.failed} without answer"
        )

    run = run_campaign(
        directory,
        name=scenario.name,
        targets=targets,
        tests=tests,
        settings=settings,
        zone=scenario.tests.zone,
        interval=interval,
        duration=duration,
        scenario_path=scenario.path,
        scenario_text=scenario.text,
        scenario_sha256=scenario.sha256,
        on_round=progress,
    )
    console.success(
        f"{len(run.observations)} observations in {run.file}; "
        f"next: rootcanary classify {directory}"
    )


def _seconds(option: str, text: str | None, default: float | None) -> float | None:
    if text is None:
        return default
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def schedule_proxy(scenario: Scenario, directory: Path, sessions: int | None) -> None:
    if scenario.proxy is None:
        raise ConfigError(f"{scenario.path}: has no [proxy] section")
    spec = scenario.proxy
    creds = Credentials.from_env(spec)
    tests = fetchable(scenario_tests(scenario))
    assert scenario.tests is not None
    count = sessions or spec.sessions
    console.info(
        f"{count} exit session(s) through {spec.gateway}, {len(tests)} names each, "
        f"{spec.concurrency} at a time"
        + (f", at most {spec.rate:g} requests/s" if spec.rate else "")
    )
    with proxy_progress(count) as on_progress:
        run = run_proxy_campaign(
            directory,
            name=scenario.name,
            spec=spec,
            creds=creds,
            tests=tests,
            zone=scenario.tests.zone,
            sources=join_sources(scenario),
            sessions=count,
            scenario_path=scenario.path,
            scenario_text=scenario.text,
            scenario_sha256=scenario.sha256,
            on_progress=on_progress,
        )
    stats = run.stats
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(stats.outcomes.items()))
    console.info(
        f"{stats.tried} exits tried, {stats.completed} completed, "
        f"{stats.failed} failed; {stats.requests} requests ({outcomes})"
    )
    console.success(
        f"requests logged in {run.file}; next: rootcanary fetch {directory}"
    )
