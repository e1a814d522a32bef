"""The one console: data on stdout, messages and progress on stderr.

Library code never prints; it logs (``logging.getLogger("rootcanary.…")``) or
returns data. Commands write results with :meth:`Console.data` (plain text,
pipe-clean, no markup) and talk to the user with :meth:`info`, :meth:`warn` and
:meth:`error` on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from rich.console import Console as RichConsole
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

# Characters that could move the cursor or recolour the terminal when a DNS
# name, TXT string or API message is echoed (data from the network is
# untrusted); everything below 0x20 except tab and newline, plus DEL and C1.
_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)], "?")


def sanitize(text: str) -> str:
    """Make network-derived text safe to show: no control characters, no markup."""
    return escape(text.translate(_CONTROL))


class Console:
    """Stdout for data, stderr for people; ``verbosity`` 0 = normal, -1 = quiet."""

    def __init__(
        self,
        verbosity: int = 0,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.verbosity = verbosity
        self._stdout = stdout
        self.err = RichConsole(file=stderr or sys.stderr, highlight=False)

    @property
    def stdout(self) -> IO[str]:
        # Looked up at call time so that test runners that swap sys.stdout
        # (typer's CliRunner) capture what we write.
        return self._stdout or sys.stdout

    def data(self, text: str, end: str = "\n") -> None:
        """Write result data to stdout exactly as given."""
        self.stdout.write(text + end)

    def table(self, table: Table) -> None:
        """Render a rich table of results on stdout.

        Piped or redirected output gets a wide fixed width instead of rich's
        80 columns, so that rows stay on one line in files and logs.
        """
        width = None if self.stdout.isatty() else 200
        RichConsole(
            file=self.stdout, highlight=False, soft_wrap=False, width=width
        ).print(table)

    def info(self, message: str, *args: Any) -> None:
        if self.verbosity >= 0:
            self.err.print(message % args if args else message)

    def detail(self, message: str, *args: Any) -> None:
        """Shown only with ``-v``."""
        if self.verbosity >= 1:
            self.err.print(message % args if args else message, style="dim")

    def success(self, message: str) -> None:
        if self.verbosity >= 0:
            self.err.print(message, style="green")

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", style="yellow")

    def error(self, message: str) -> None:
        self.err.print(f"error: {message}", style="bold red", markup=False)

    def setup_logging(self) -> None:
        """Send the library's log records to stderr through rich."""
        level = {-1: logging.WARNING, 0: logging.INFO}.get(
            self.verbosity, logging.DEBUG
        )
        handler = RichHandler(
            console=self.err,
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="%H:%M:%S",
        )
        root = logging.getLogger("rootcanary")
        root.handlers[:] = [handler]
        root.setLevel(level)
        root.propagate = False
        server = logging.getLogger("authserver")
        server.handlers[:] = [handler]
        server.setLevel(level)
        server.propagate = False


console = Console()
