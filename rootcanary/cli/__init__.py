"""The ``rootcanary`` command: thin commands over the library.

Each subcommand lives in its own module here and registers itself through
``register(app)``; the bodies parse options, call one library function and
render its result.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rootcanary import __version__
from rootcanary.cli import (
    classify,
    demo,
    fetch,
    observations,
    report,
    schedule,
    serve,
    status,
    stop,
    telemetry,
    testbed,
    zone,
)
from rootcanary.console import console

app = typer.Typer(
    name="rootcanary",
    help="Probe DNS resolvers for DNSSEC validation and root trust anchors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        console.data(f"rootcanary {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More messages on stderr."),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    console.verbosity = -1 if quiet else verbose
    console.setup_logging()


for module in (
    serve,
    zone,
    schedule,
    fetch,
    status,
    stop,
    observations,
    classify,
    telemetry,
    testbed,
    demo,
    report,
):
    module.register(app)


def main() -> None:
    app()
