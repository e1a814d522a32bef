"""``rootcanary observations``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("observations")
    @guarded
    def _observations() -> None:
        """Not available in this version yet."""
        raise RootCanaryError(
            "rootcanary observations is not available in this version yet"
        )
