"""``rootcanary report``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("report")
    @guarded
    def _report() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary report is not available in this version yet")
