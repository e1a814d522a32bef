"""``rootcanary testbed up|status|down``: real resolvers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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


def register(app: typer.Typer) -> None:
    app.add_typer(testbed_app, name="testbed")
