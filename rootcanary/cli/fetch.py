"""``rootcanary fetch``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    @guarded
    def _fetch() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary fetch is not available in this version yet")
