"""The HTML file and the command: self-contained, escaped, deterministic."""

from __future__ import annotations

import base64
import io
import re
import struct
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console as RichConsole
from test_report_helpers import HOSTILE, SCENARIO, write_run
from typer.testing import CliRunner

from rootcanary.cli import app
from rootcanary.console import console
from rootcanary.readers.synthetic import write_campaign
from rootcanary.report import build_report, make_plots, render_html, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GENERATED = re.compile(r'<time id="generated"[^>]*>[^<]*</time>')


class Page(HTMLParser):
    """Elements, attributes and text of a page, as a browser would see them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if tag == "table":
            self._table = values.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def find(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def by_id(self, ident: str) -> dict[str, str] | None:
        return next((a for _, a in self.tags if a.get("id") == ident), None)


def png_size(uri: str) -> tuple[int, int, int]:
    """(width, height, bytes) of a data: URI that must hold a PNG."""
    head, _, payload = uri.partition(",")
    assert head == "data:image/png;base64"
    data = base64.b64decode(payload, validate=True)
    assert data.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", data[16:24])  # IHDR, RFC 2083 §4.1.1
    return width, height, len(data)


@pytest.fixture
def messages(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the command says on stderr (the console is bound at import time)."""
    out = io.StringIO()
    monkeypatch.setattr(console, "err", RichConsole(file=out, width=200))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("html") / "run", contradict="kresd")


@pytest.fixture(scope="module")
def page(run: Path) -> Page:
    report = build_report(run)
    return Page(render_html(report, make_plots(report), datetime.now(UTC)))


def test_plots_are_embedded_pngs(page: Page) -> None:
    images = page.find("img")
    assert len(images) == 7
    for image in images:
        width, height, size = png_size(image["src"])
        assert width == 1100 and 200 <= height <= 600
        assert size > 10_000
        assert image["alt"]
    figures = {a["id"] for a in page.find("figure")}
    assert figures == {
        "plot-validation",
        "plot-vantage-points",
        "plot-anchors-1234",
        "plot-anchors-5678",
        "plot-anchor-sets",
        "plot-rfc8145",
        "plot-dnskey",
    }


def test_nothing_is_fetched_from_outside(page: Page) -> None:
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (tag, attrs[name])
        assert tag not in ("script", "link", "iframe", "object", "embed")
    policy = next(
        a for a in page.find("meta") if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy["content"].startswith("default-src 'none'")


def test_verdict_table_flags_the_contradiction(page: Page) -> None:
    rows = page.tables["table-verdicts"]
    assert rows[0][:7] == [
        "resolver",
        "implementation",
        "variant",
        "address",
        "expected",
        "outcome",
        "as expected",
    ]
    body = {row[0]: row for row in rows[1:]}
    assert set(body) == {"unbound", "bind-stale", "kresd", "pdns-static", "unbound-off"}
    assert body["kresd"][6] == "NO" and body["unbound"][6] == "yes"
    assert body["bind-stale"][9].startswith("2026-12-03T18:03:00Z (+180 s)")
    bad = [a for t, a in page.tags if t == "tr" and a.get("class") == "bad"]
    assert bad, "the contradicted verdict's row is marked"


def test_funnel_and_count_tables(page: Page) -> None:
    funnel = {row[0]: row[1] for row in page.tables["table-funnel"][1:]}
    assert funnel["measured"] == "5"
    assert funnel["then bogus or insecure after"] == "2"
    assert funnel["never recovered"] == "2"
    counts = page.tables["table-validation-counts"]
    assert counts[1][0] == "local"
    assert counts[1][1:] == ["2 (40.0%)", "1 (20.0%)", "2 (40.0%)", "0 (0.0%)", "5"]
    anchors = {row[0]: row for row in page.tables["table-anchor-counts"][1:]}
    assert set(anchors) == {"1234", "5678"}
    assert anchors["5678"][1] == "2 (40.0%)"  # Vnew: unbound and kresd


def test_scenario_and_parameters_are_shown(page: Page) -> None:
    text = "".join(page.text)
    assert SCENARIO in text  # the markup inside it arrives as text
    params = dict((row[0], row[1]) for row in page.tables["table-parameters"])
    assert params["probe_interval"] == "5.0"
    assert params["old key"] == "slot ksk, tag 1234, revoked tag 1362"
    assert params["backend"] == "local"


def test_strings_from_data_are_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", hostile=True, contradict="kresd")
    report = build_report(run)
    page_text = render_html(report, make_plots(report), datetime.now(UTC))
    assert "<script" not in page_text
    assert "<img src=x" not in page_text
    page = Page(page_text)
    assert all(a["src"].startswith("data:image/png;base64,") for a in page.find("img"))
    names = [row[0] for row in page.tables["table-verdicts"][1:]]
    assert HOSTILE in names
    notes = [row[-1] for row in page.tables["table-verdicts"][1:]]
    assert '</td><script>alert(2)</script> "quoted"' in notes
    points = [row[1] for row in page.tables["table-vantage-points"][1:]]
    assert f"{HOSTILE} (127.0.1.2)" in points


def test_same_input_same_report(tmp_path: Path, run: Path) -> None:
    first = write_report(
        build_report(run),
        tmp_path / "a.html",
        generated=datetime(2026, 1, 1, tzinfo=UTC),
    )
    second = write_report(build_report(run), tmp_path / "b.html")
    one, two = first.html.read_text(), second.html.read_text()
    assert one != two  # the generation time differs
    assert GENERATED.sub("", one) == GENERATED.sub("", two)
    assert [p.name for p in first.pngs] == [p.name for p in second.pngs]
    for a, b in zip(first.pngs, second.pngs, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.pngs[0].parent == tmp_path / "a-files"


def test_atlas_report_says_what_has_no_data(tmp_path: Path) -> None:
    campaign = tmp_path / "atlas"
    write_campaign(campaign, probes=10, rounds=3)
    report = build_report(campaign)
    page = Page(render_html(report, make_plots(report), datetime.now(UTC)))
    missing = {
        a.get("id", "")
        for t, a in page.tags
        if t == "h3" and a.get("id", "").startswith(("plot-", "t-"))
    }
    text = "".join(page.text)
    # Same sections as a replay; the ones without data say so.
    assert {"plot-rfc8145", "plot-dnskey"} <= missing
    assert "No data: verdicts come from rollover replays" in text
    assert "No data: no event is known: give --event TIME" in text
    assert "No plot: this directory has no query log of our server" in text
    assert "table-verdicts" not in page.tables
    assert {a["id"] for a in page.find("figure")} == {
        "plot-validation",
        "plot-vantage-points",  # 10 probes: few enough vantage points for rows
        "plot-anchors-20326",
        "plot-anchors-38696",
        "plot-anchor-sets",
    }
    for key in ("validation-counts", "anchor-counts", "vantage-points", "input"):
        assert f"table-{key}" in page.tables
    sections = [a["id"] for t, a in page.tags if t == "section"]
    assert sections == [
        "s-overview",
        "s-verdicts",
        "s-plots",
        "s-funnel",
        "s-counts",
        "s-vantage-points",
        "s-telemetry",
        "s-dnskey",
        "s-timeline",
        "s-parameters",
        "s-scenario",
        "s-input",
    ]


# -- the command -----------------------------------------------------------------


def test_command_writes_html_and_pngs(
    tmp_path: Path, run: Path, messages: io.StringIO
) -> None:
    output = tmp_path / "out" / "replay.html"
    stale = tmp_path / "out" / "replay-files" / "old-plot.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over")
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(run),
            "--output",
            str(output),
            "--bucket",
            "30s",
            "--keytag",
            "5678",
            "--event",
            "2026-12-03T18:05:00Z",
            "--format",
            "html",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(output)
    files = sorted(p.name for p in (tmp_path / "out" / "replay-files").iterdir())
    assert files == [
        "anchor-sets.png",
        "anchors-5678.png",
        "dnskey.png",
        "rfc8145.png",
        "validation.png",
        "vantage-points.png",
    ]
    page = Page(output.read_text())
    funnel_title = page.by_id("t-funnel")
    assert funnel_title is not None
    said = messages.getvalue()
    assert "1 resolver(s) did not behave as expected: kresd" in said
    assert "1 bad JSON (first at" in said
    text = "".join(page.text)
    assert "Around the event: event at 2026-12-03T18:05:00Z" in text
    assert output.stat().st_mode & 0o777 == 0o644


def test_command_default_output(tmp_path: Path) -> None:
    campaign = tmp_path / "atlas"
    write_campaign(campaign, probes=5, rounds=2)
    result = CliRunner().invoke(app, ["report", str(campaign)])
    assert result.exit_code == 0, result.output
    assert (campaign / "report.html").is_file()
    assert (campaign / "report-files" / "validation.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bucket", "0"], "--bucket: a whole number of seconds"),
        (["--bucket", "soon"], "--bucket: not a duration"),
        (["--event", "tomorrow"], "--event:"),
        (["--keytag", "70000"], "--keytag 70000: key tags are 0..65535"),
        (["--query-log", "/nonexistent"], "--query-log /nonexistent: no such file"),
    ],
)
def test_command_rejects_bad_options(
    tmp_path: Path, run: Path, messages: io.StringIO, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["report", str(run), "-o", str(tmp_path / "r.html"), *args]
    )
    assert result.exit_code == 1
    assert message in messages.getvalue()
    assert not (tmp_path / "r.html").exists()


def test_command_on_an_empty_directory(tmp_path: Path, messages: io.StringIO) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert "nothing to report" in messages.getvalue()


def test_replay_summary_alone_still_reports(tmp_path: Path, run: Path) -> None:
    alone = tmp_path / "run"
    alone.mkdir()
    (alone / "replay.json").write_bytes((run / "replay.json").read_bytes())
    report = build_report(alone)
    assert report.classification.buckets == ()
    page = Page(render_html(report, make_plots(report), datetime.now(UTC)))
    assert not page.find("img")
    text = "".join(page.text)
    assert "No plot: no vantage point has a classified bucket." in text
    # The replay names its key tags, so each gets its section, empty.
    assert text.count("No plot: no complete sentinel test") == 2
    assert len(page.tables["table-verdicts"]) == 6
    events = [row[2] for row in page.tables["table-timeline"][1:]]
    assert events == ["publish", "restart kresd", "roll", "revoke", "remove"]


def test_rfc8145_tables(page: Page) -> None:
    days = page.tables["table-rfc8145-days"]
    assert days[0] == [
        "date",
        "key tag 1234",
        "key tag 5678",
        "key tag 1362",
        "any of them",
    ]
    assert days[1] == ["2026-12-03", "3 (100.0%)", "2 (66.7%)", "0 (0.0%)", "3"]
    text = "".join(page.text)
    # bind-stale never picked up the new key.
    assert (
        "3 sources signalled a key tag of interest; 1 of them never signalled 5678."
        in text
    )
    changes = page.tables["table-keytag-sets"]
    assert changes[1] == ["2026-12-03T18:00:00Z", "+0 s", "unbound (127.0.1.1)", "1234"]
    assert [
        "2026-12-03T18:01:10Z",
        "+70 s",
        "unbound (127.0.1.1)",
        "1234, 5678",
    ] in changes
    sources = {row[0]: row for row in page.tables["table-dnskey-sources"][1:]}
    assert sources["bind-stale (127.0.1.2)"][2] == "5"  # 2 s apart in 10 s buckets


def test_dnskey_rates_follow_the_phases(page: Page) -> None:
    rows = page.tables["table-dnskey-phases"][1:]
    assert [row[1] for row in rows[:4]] == ["publish", "roll", "revoke", "remove"]
    stale = {row[1]: row[4] for row in rows if row[0] == "bind-stale (127.0.1.2)"}
    assert stale == {"publish": "3.00", "roll": "30.00", "revoke": "30.00",
                     "remove": "30.00"}  # fmt: skip
