"""``rootcanary demo``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @guarded
    def _demo() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary demo is not available in this version yet")
