"""``rootcanary schedule``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("schedule")
    @guarded
    def _schedule() -> None:
        """Not available in this version yet."""
        raise RootCanaryError(
            "rootcanary schedule is not available in this version yet"
        )
