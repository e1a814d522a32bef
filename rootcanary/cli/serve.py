"""``rootcanary serve``."""

from __future__ import annotations

import typer

from rootcanary.cli.common import guarded
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @guarded
    def _serve() -> None:
        """Not available in this version yet."""
        raise RootCanaryError("rootcanary serve is not available in this version yet")
