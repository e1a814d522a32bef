"""The report as one self-contained HTML file.

Everything is inside the file: the plots as ``data:`` URIs, the style sheet
inline, no script, no external font, image or link, so it reads the same
offline, from a mail attachment or an archive years later. A Content Security
Policy in the page forbids any fetch but ``data:`` images, so even a string
that slipped through escaping could not load or run anything. Every string
that came from data (DNS names, resolver names, notes, the scenario text) is
escaped with :func:`html.escape`. The same report gives the same bytes except
for the ``<time id="generated">`` element.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from datetime import datetime

from rootcanary import __version__
from rootcanary.report import tables, text
from rootcanary.report.model import Report
from rootcanary.report.plots import Plot
from rootcanary.report.tables import DataTable

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px;
  padding: 0 1.5em 3em; color: #212121; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
  margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.meta { color: #616161; margin-top: 0; }
nav { font-size: 0.9em; margin: 1em 0; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left;
  vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #ffebee; }
.missing { color: #6d4c41; background: #fff8e1; padding: 0.5em 0.8em;
  border-left: 4px solid #ffb300; }
.note { color: #424242; font-size: 0.9em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #424242; }
pre { background: #fafafa; border: 1px solid #ddd; padding: 0.8em;
  overflow-x: auto; font-size: 0.85em; }
""".strip()


def e(value: object) -> str:
    """Escape for text and attribute values alike (quotes included)."""
    return html.escape(str(value), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report, plots: Sequence[Plot], generated: datetime) -> str:
    """The whole page; ``generated`` is the only part not from the report."""
    title = f"rootcanary report: {report.name}"
    sections = [
        (
            "overview",
            "Overview",
            _table(tables.overview(report), header=False, title=False),
        ),
        (
            "verdicts",
            "Verdicts per resolver",
            _table(tables.verdicts(report), title=False),
        ),
        ("plots", "State shares over time", "\n".join(_figure(p) for p in plots)),
        ("funnel", "Funnel", _table(tables.funnel(report))),
        (
            "counts",
            "States",
            _table(tables.validation_counts(report))
            + _table(tables.anchor_counts(report)),
        ),
        ("vantage-points", "Vantage points", _table(tables.vantage_points(report))),
        (
            "telemetry",
            "RFC 8145 key-tag signals",
            _table(tables.rfc8145_days(report)) + _table(tables.keytag_sets(report)),
        ),
        (
            "dnskey",
            "Root DNSKEY queries",
            _table(tables.dnskey_phases(report))
            + _table(tables.dnskey_sources(report)),
        ),
        ("timeline", "Events", _table(tables.timeline(report), title=False)),
        (
            "parameters",
            "Parameters",
            _table(tables.parameters(report), title=False),
        ),
        ("scenario", "Scenario", _scenario(report)),
        ("input", "Input", _table(tables.inputs(report), title=False)),
    ]
    stamp = e(text.moment(generated))
    nav = " ".join(f'<a href="#{key}">{e(name)}</a>' for key, name, _ in sections)
    body = "\n".join(
        f'<section id="s-{key}">\n<h2 id="{key}">{e(name)}</h2>\n{content}\n</section>'
        for key, name, content in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rootcanary {e(__version__)}">
<title>{e(title)}</title>
<style>
{STYLE}
</style>
</head>
<body>
<header>
<h1>{e(title)}</h1>
<p class="meta">{e(tables.overview_line(report))} · generated
<time id="generated" datetime="{stamp}">{stamp}</time>
by rootcanary {e(__version__)}</p>
</header>
<nav>{nav}</nav>
<main>
{body}
</main>
</body>
</html>
"""


def _figure(plot: Plot) -> str:
    if plot.png is None:
        return (
            f'<h3 id="plot-{e(plot.name)}">{e(plot.title)}</h3>\n'
            f'<p class="missing">No plot: {e(plot.missing or "no data.")}</p>'
        )
    return (
        f'<figure id="plot-{e(plot.name)}">\n'
        f'<img alt="{e(plot.title)}" src="{data_uri(plot.png)}">\n'
        f"<figcaption>{e(plot.caption)}</figcaption>\n</figure>"
    )


def _table(table: DataTable, header: bool = True, title: bool = True) -> str:
    """The table (or why there is none); ``title`` False where the section's
    own heading says it all."""
    parts = [f'<h3 id="t-{e(table.key)}">{e(table.title)}</h3>'] if title else []
    if table.missing is not None:
        parts.append(f'<p class="missing">No data: {e(table.missing)}</p>')
        return "\n".join(parts)
    parts.append(f'<table id="table-{e(table.key)}">')
    if header:
        parts.append(
            "<thead><tr>"
            + "".join(f"<th>{e(c)}</th>" for c in table.columns)
            + "</tr></thead>"
        )
    parts.append("<tbody>")
    parts.extend(_rows(table))
    parts.append("</tbody></table>")
    if table.note:
        parts.append(f'<p class="note">{e(table.note)}</p>')
    return "\n".join(parts)


def _rows(table: DataTable) -> Iterable[str]:
    numeric = set(table.numeric)
    for row in table.rows:
        attr = f' class="{e(row.flag)}"' if row.flag else ""
        cells = "".join(
            f'<td class="num">{e(cell)}</td>' if i in numeric else f"<td>{e(cell)}</td>"
            for i, cell in enumerate(row.cells)
        )
        yield f"<tr{attr}>{cells}</tr>"


def _scenario(report: Report) -> str:
    scenario = report.scenario_text
    if not scenario:
        return (
            '<p class="missing">No data: no scenario text was recorded with this '
            "run or campaign.</p>"
        )
    return f'<pre id="scenario-text">{e(scenario)}</pre>'
