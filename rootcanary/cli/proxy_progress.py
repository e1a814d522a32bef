"""The proxy prober's progress bar on stderr: exits tried, completed, failed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rootcanary.backends.proxy import ProbeStats
from rootcanary.console import console


@contextmanager
def proxy_progress(total: int) -> Iterator[Callable[[ProbeStats], None]]:
    """Yield the callback the prober calls after each session."""
    if console.verbosity < 0:
        yield lambda stats: None
        return
    progress = Progress(
        TextColumn("exits"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console.err,
        transient=False,
    )
    task = progress.add_task("exits", total=total, detail="")

    def update(stats: ProbeStats) -> None:
        progress.update(
            task,
            completed=stats.completed + stats.failed,
            detail=(
                f"tried {stats.tried}, completed {stats.completed}, "
                f"failed {stats.failed}, requests {stats.requests}"
            ),
        )

    with progress:
        yield update
