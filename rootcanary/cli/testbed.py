"""``rootcanary testbed up|status|down``: real resolvers on loopback."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rootcanary.backends.local import RoundResult
from rootcanary.cli.common import ScenarioArg, guarded
from rootcanary.console import console
from rootcanary.errors import TestbedError
from rootcanary.scenario import load_scenario
from rootcanary.testbed import Testbed, default_run_dir, read_state, stop_recorded
from rootcanary.testbed.process import answers, is_running

RunDirOption = Annotated[
    Path | None,
    typer.Option(
        "--run-dir", help="Where configs, logs and state go (default: runs/<scenario>)."
    ),
]

testbed_app = typer.Typer(
    help="A private DNS hierarchy and real resolvers on loopback.",
    no_args_is_help=True,
)


@testbed_app.command("up")
@guarded
def up(scenario_path: ScenarioArg, run_dir: RunDirOption = None) -> None:
    """Start the scenario's server and resolvers; leave them running."""
    scenario = load_scenario(scenario_path)
    testbed = Testbed(scenario, run_dir)
    resolvers = testbed.up()
    table = Table("resolver", "implementation", "variant", "address", "pid")
    for r in resolvers:
        table.add_row(r.name, r.implementation, r.variant, r.address, str(r.pid))
    console.table(table)
    console.success(
        f"testbed up in {testbed.run_dir}; stop it with: "
        f"rootcanary testbed down {scenario_path}"
    )


@testbed_app.command("status")
@guarded
def status(scenario_path: ScenarioArg, run_dir: RunDirOption = None) -> None:
    """Show each process of a running testbed; exit 1 if any is not answering."""
    scenario = load_scenario(scenario_path)
    directory = (run_dir or default_run_dir(scenario)).resolve()
    state = read_state(directory)
    if state is None:
        raise TestbedError(f"no testbed is running in {directory}")
    processes = state.get("processes")
    table = Table("name", "kind", "address", "pid", "process", "answers")
    healthy = True
    for data in processes if isinstance(processes, list) else []:
        pid, argv = int(data["pid"]), list(data["argv"])
        alive = is_running(pid, argv[0])
        responding = alive and answers(str(data["address"]), int(data["port"]))
        healthy &= responding
        table.add_row(
            str(data["name"]),
            str(data["kind"]),
            str(data["address"]),
            str(pid),
            "running" if alive else "gone",
            "yes" if responding else "no",
        )
    console.table(table)
    if not healthy:
        raise TestbedError("some testbed processes are not answering (see above)")


@testbed_app.command("down")
@guarded
def down(scenario_path: ScenarioArg, run_dir: RunDirOption = None) -> None:
    """Stop every process the testbed started, by pid."""
    scenario = load_scenario(scenario_path)
    directory = (run_dir or default_run_dir(scenario)).resolve()
    stopped = stop_recorded(directory / "testbed.json")
    if stopped:
        console.success(f"stopped {', '.join(stopped)}")
    else:
        console.info(f"nothing was running in {directory}")


@testbed_app.command("run")
@guarded
def run(scenario_path: ScenarioArg, run_dir: RunDirOption = None) -> None:
    """Replay the scenario's rollover timeline on its resolvers; judge each one.

    Exits 1 if a resolver's outcome contradicts its configuration.
    """
    from rootcanary.replay import run_replay

    scenario = load_scenario(scenario_path)
    rollover = scenario.rollover
    if rollover is None:
        raise TestbedError(f"{scenario_path}: has no [rollover] section to replay")
    console.info(
        f"replaying {len(rollover.phases)} phases over {rollover.duration:.0f} s, "
        f"probing every {rollover.probe_interval:g} s"
    )
    last_phase = ["start"]

    def progress(offset: float, phase: str, result: RoundResult) -> None:
        if phase != last_phase[0]:
            console.info(f"+{offset:5.0f} s  phase {phase}")
            last_phase[0] = phase
        console.detail(
            f"+{offset:5.0f} s  round {result.number}: {result.failed} unanswered"
        )

    result = run_replay(scenario, run_dir, on_round=progress)
    table = Table(
        "resolver",
        "implementation",
        "variant",
        "expected",
        "outcome",
        "trusted new key",
        "dropped revoked",
        "verdict",
        title=f"rollover replay: {result.keys['old'].tag} -> {result.keys['new'].tag}",
    )
    for v in result.verdicts:
        table.add_row(
            v.resolver,
            v.implementation,
            v.variant,
            v.expected,
            v.outcome,
            _offset(v.trusted_new_at, result.started),
            _offset(v.dropped_revoked_at, result.started),
            "as configured" if v.ok else "CONTRADICTS",
        )
    console.table(table)
    console.info(f"summary: {result.run_dir / 'replay.json'}")
    bad = [v for v in result.verdicts if not v.ok]
    for v in bad:
        console.error(f"{v.resolver}: expected it {v.expected}, but it {v.outcome}")
    if bad:
        raise TestbedError(
            f"{len(bad)} of {len(result.verdicts)} resolvers contradict their "
            "configuration"
        )
    console.success("every resolver went through the rollover as configured")


def _offset(moment: datetime | None, started: datetime) -> str:
    if moment is None:
        return "-"
    return f"+{(moment - started).total_seconds():.0f} s"


def register(app: typer.Typer) -> None:
    app.add_typer(testbed_app, name="testbed")
