"""The HTML report in a real browser: headless Chromium (Debian ``chromium``).

Chromium is started with every background service off (this machine's network
is closed; see the brief) and a fresh profile, on ``file://`` URLs only. Each
run is its own process group, killed whole when the test ends, also on
failure, so no renderer or zygote process outlives it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report_helpers import write_run
from test_report_html import Page, png_size

from rootcanary.readers.synthetic import write_campaign
from rootcanary.report import build_report, write_report
from rootcanary.report.plots import COLOURS

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh)"
    ),
]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1280, 5000)


def chromium(tmp_path: Path, *args: str) -> str:
    """Run Chromium once; its stdout."""
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        # The browser's helpers are in its process group; stop every one.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8")


def rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16, value >> 8 & 255, value & 255


@pytest.fixture(scope="module")
def replay_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chromium")
    run = write_run(root / "run", contradict="kresd")
    return write_report(build_report(run), root / "report.html").html


def test_report_renders_with_its_plots(replay_html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    width, height = WINDOW
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        replay_html.as_uri(),
    )
    with Image.open(shot) as image:
        assert image.size == WINDOW
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    total = width * height
    white = int(np.all(pixels == 255, axis=1).sum())
    assert white < 0.9 * total, "the page is (nearly) blank"
    distinct = np.unique(pixels @ np.array([1 << 16, 1 << 8, 1]))
    assert len(distinct) > 500, "too few colours for text and plots"
    # These colours are drawn only inside the plots: the browser decoded and
    # showed the embedded images, not just the tables around them.
    for state in ("secure", "bogus", "insecure", "Vnew", "Vold"):
        found = int(np.all(pixels == rgb(COLOURS[state]), axis=1).sum())
        assert found > 2000, state


def test_dom_holds_plots_and_tables(replay_html: Path, tmp_path: Path) -> None:
    page = Page(chromium(tmp_path, "--dump-dom", replay_html.as_uri()))
    images = page.find("img")
    assert len(images) == 7
    for image in images:
        width, height, size = png_size(image["src"])
        assert width >= 800 and height >= 200 and size > 10_000
    verdicts = page.tables["table-verdicts"]
    assert len(verdicts) == 6  # header and five resolvers
    assert [row[0] for row in verdicts[1:]] == [
        "unbound",
        "bind-stale",
        "kresd",
        "pdns-static",
        "unbound-off",
    ]
    assert verdicts[3][6] == "NO"
    funnel = {row[0]: row[1] for row in page.tables["table-funnel"][1:]}
    assert funnel["never recovered"] == "2"
    for key in ("overview", "validation-counts", "anchor-counts", "rfc8145-days",
                "keytag-sets", "dnskey-phases", "dnskey-sources", "timeline",
                "parameters", "input"):  # fmt: skip
        assert page.tables.get(f"table-{key}"), key
    assert not page.find("script")


def test_atlas_campaign_report_renders(tmp_path: Path) -> None:
    campaign = tmp_path / "atlas"
    write_campaign(campaign, probes=60, rounds=6)
    written = write_report(build_report(campaign), campaign / "report.html")
    page = Page(chromium(tmp_path, "--dump-dom", written.html.as_uri()))
    assert len(page.find("img")) == 4  # 60 probes: too many for per-point rows
    text = "".join(page.text)
    assert "No data: verdicts come from rollover replays" in text
    assert "No plot: this directory has no query log of our server" in text
    assert [a["id"] for t, a in page.tags if t == "section"][:3] == [
        "s-overview",
        "s-verdicts",
        "s-plots",
    ]
    counts = page.tables["table-validation-counts"]
    assert counts[0] == ["platform", "secure", "insecure", "bogus", "unknown", "total"]
    assert counts[1][0] == "atlas" and int(counts[1][-1]) > 60
