"""The local branch of ``rootcanary schedule``: probe resolvers directly."""

from __future__ import annotations

from pathlib import Path

from rootcanary.backends.local import ProbeSettings, RoundResult, run_campaign
from rootcanary.backends.local_plan import resolve_targets, scenario_tests
from rootcanary.config import parse_duration
from rootcanary.console import console
from rootcanary.errors import ConfigError
from rootcanary.scenario import LocalSpec, Scenario


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
