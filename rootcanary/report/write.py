"""Write a report: the HTML file and its PNG files in ``<name>-files/``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rootcanary.campaign import write_atomic
from rootcanary.errors import ReportError
from rootcanary.report.html import render_html
from rootcanary.report.model import Report
from rootcanary.report.plots import Plot, make_plots

DEFAULT_NAME = "report.html"


@dataclass(frozen=True)
class Written:
    """What :func:`write_report` wrote."""

    html: Path
    pngs: tuple[Path, ...]
    plots: tuple[Plot, ...]  # every plot, also those without data

    @property
    def missing(self) -> tuple[Plot, ...]:
        return tuple(p for p in self.plots if p.png is None)


def files_dir(output: Path) -> Path:
    """``report.html`` -> ``report-files/`` beside it."""
    return output.with_name(f"{output.stem}-files")


def write_report(
    report: Report, output: Path, *, generated: datetime | None = None
) -> Written:
    """Draw the plots, write the PNGs and the self-contained HTML (atomically).

    PNGs left in the folder by an earlier report that has no such plot now are
    removed, so the folder always matches the HTML next to it.
    """
    plots = make_plots(report)
    page = render_html(report, plots, generated or datetime.now(UTC))
    folder = files_dir(output)
    pngs = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {f"{p.name}.png" for p in plots if p.png is not None}
        for stale in sorted(folder.glob("*.png")):
            if stale.name not in wanted:
                stale.unlink()
        for plot in plots:
            if plot.png is not None:
                path = folder / f"{plot.name}.png"
                _publish(path, plot.png)
                pngs.append(path)
        _publish(output, page.encode("utf-8"))
    except OSError as exc:
        where = exc.filename or output
        raise ReportError(f"{where}: cannot write: {exc.strerror or exc}") from None
    return Written(output, tuple(pngs), plots)


def _publish(path: Path, data: bytes) -> None:
    write_atomic(path, data)
    # A report is for reading by others; the temporary file was private.
    path.chmod(0o644)
