"""What every command shares: error handling, the console, option types."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from rootcanary.console import console
from rootcanary.errors import RootCanaryError
from rootcanary.observation import Tally

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("rootcanary.cli")

ScenarioArg = Annotated[
    Path,
    typer.Argument(
        help="Scenario file (TOML), e.g. scenarios/canary.toml.", show_default=False
    ),
]


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a RootCanaryError into one red line on stderr and exit status 1.

    Other exceptions are bugs and keep their traceback (without locals: they
    might hold a key).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RootCanaryError as exc:
            console.error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def report_tally(tally: Tally, noun: str = "records") -> None:
    """Say on stderr what was read and what was skipped, by reason."""
    lines = tally.summary(noun)
    if tally.total_skipped:
        console.warn(lines[0])
        for line in lines[1:]:
            console.info(line)
    else:
        console.info(lines[0])
