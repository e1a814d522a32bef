"""``rootcanary zone``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("zone")
    @guarded
    def _zone() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary zone is not available in this version yet")
