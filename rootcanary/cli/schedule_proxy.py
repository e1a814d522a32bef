"""``rootcanary schedule --backend proxy``: exit sessions through a proxy network."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from rootcanary.backends.local_plan import scenario_tests
from rootcanary.backends.proxy import Credentials, fetchable, run_proxy_campaign
from rootcanary.backends.proxy_plan import join_sources
from rootcanary.cli.proxy_progress import proxy_progress
from rootcanary.console import console
from rootcanary.errors import ConfigError
from rootcanary.scenario import Scenario


def schedule_proxy(scenario: Scenario, directory: Path, sessions: int | None) -> None:
    if scenario.proxy is None:
        raise ConfigError(f"{scenario.path}: has no [proxy] section")
    spec = scenario.proxy
    creds = Credentials.from_env(spec)
    tests = fetchable(scenario_tests(scenario))
    assert scenario.tests is not None
    count = sessions or spec.sessions
    console.info(
        escape(
            f"{count} exit session(s) through {spec.gateway}, {len(tests)} names "
            f"each, {spec.concurrency} at a time"
            + (f", at most {spec.rate:g} requests/s" if spec.rate else "")
        )
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
        escape(f"requests logged in {run.file}; next: rootcanary fetch {directory}")
    )
