"""``rootcanary telemetry``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("telemetry")
    @guarded
    def _telemetry() -> None:
        """Not available in this version yet."""
        raise RootCanaryError(
            "rootcanary telemetry is not available in this version yet"
        )
