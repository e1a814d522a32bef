"""``rootcanary classify``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("classify")
    @guarded
    def _classify() -> None:
        """Not available in this version yet."""
        raise RootCanaryError(
            "rootcanary classify is not available in this version yet"
        )
