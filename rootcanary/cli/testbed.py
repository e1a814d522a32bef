"""``rootcanary testbed``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("testbed")
    @guarded
    def _testbed() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary testbed is not available in this version yet")
