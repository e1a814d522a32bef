"""``rootcanary serve``: the signed authoritative test-zone server."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from rootcanary.cli.common import ScenarioArg, guarded
from rootcanary.config import parse_hostport
from rootcanary.errors import ConfigError


def _hostports(values: list[str]) -> tuple[tuple[str, int], ...] | None:
    out = []
    for text in values:
        try:
            out.append(parse_hostport(text))
        except ValueError as exc:
            raise ConfigError(f"--listen {text}: {exc}") from None
    return tuple(out) or None


class _UTCFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)


def _plain_logging() -> None:
    """One unwrapped line per record: a server's stderr is read by programs
    (the testbed) and kept in files, and DS records must stay on one line."""
    logger = logging.getLogger("authserver")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _UTCFormatter(
            "%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"
        )
    )
    logger.handlers[:] = [handler]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @guarded
    def _serve(
        scenario: ScenarioArg,
        listen: Annotated[
            list[str],
            typer.Option(
                "--listen",
                metavar="HOST:PORT",
                help="Address to answer on (repeatable; replaces the scenario's "
                "listen addresses). IPv6 as [::1]:53.",
            ),
        ] = [],  # noqa: B006 - typer needs a list default for repeatable options
        state_dir: Annotated[
            Path | None,
            typer.Option(
                help="Directory of the zone keys (default: the scenario's "
                "state_dir, else $XDG_STATE_HOME/rootcanary/authserver/NAME).",
            ),
        ] = None,
        query_log: Annotated[
            Path | None,
            typer.Option(help="Append one JSON line per query to this file."),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(min=1, max=64, help="Worker processes (SO_REUSEPORT)."),
        ] = None,
    ) -> None:
        """Serve the scenario's signed zones until SIGTERM or SIGINT.

        On start it logs the zones, the addresses and the DS records to publish;
        SIGHUP reloads the scenario and reopens the query log.
        """
        from authserver.server import ServeOptions, serve

        _plain_logging()
        serve(
            ServeOptions(
                scenario=scenario,
                listen=_hostports(listen),
                state_dir=state_dir,
                query_log=query_log,
                workers=workers,
            )
        )
