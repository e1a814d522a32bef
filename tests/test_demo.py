"""The demo and the local backend against the real testbed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from testbed_util import write_scenario

from rootcanary import demo
from rootcanary.backends.local import ProbeSettings, Target, query
from rootcanary.plan import PlannedTest
from rootcanary.scenario import load_scenario

pytestmark = pytest.mark.integration

DEMO_SET = [
    ("unbound", "unbound", "validating"),
    ("bind", "bind", "validating"),
    ("kresd", "kresd", "validating"),
    ("pdns", "pdns-recursor", "validating"),
    ("unbound-off", "unbound", "off"),
    ("unbound-stale", "unbound", "stale"),
]


def test_demo_verdicts_follow_the_configuration(tmp_path: Path) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "127.0.37", DEMO_SET, name="demo")
    )
    result = demo.run_demo(scenario)
    rows = {v.resolver: v for v in result.verdicts}
    assert set(rows) == {name for name, _, _ in DEMO_SET}
    for name in ("unbound", "bind", "kresd"):
        assert (rows[name].validation, rows[name].trust_anchor) == ("secure", "Vnew")
    assert (rows["pdns"].validation, rows["pdns"].trust_anchor) == ("secure", "Vind")
    assert (rows["unbound-off"].validation, rows["unbound-off"].trust_anchor) == (
        "insecure",
        "nonV",
    )
    assert rows["unbound-stale"].validation == "bogus"
    # whoami: each resolver's own outgoing address reached our server.
    for name in ("unbound", "bind", "kresd", "pdns", "unbound-off"):
        assert rows[name].upstream == (rows[name].address,)
    # Validators name the failure (RFC 8914): BIND 9.18 sends no EDE here.
    assert 6 in rows["unbound"].ede and 6 in rows["kresd"].ede
    assert result.ok
    # Nothing is left running.
    assert not (tmp_path / "run" / "testbed.json").exists()


def test_demo_cli_exits_nonzero_on_a_contradiction(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "127.0.38", DEMO_SET[4:], name="demo")
    # Run the CLI with an expectation that cannot hold: stale anchors "secure".
    code = (
        "import sys, rootcanary.demo as d\n"
        "d.expected_for = lambda impl, variant: d.Expected('secure', None)\n"
        "from rootcanary.cli import app\n"
        "sys.argv = ['rootcanary', 'demo', sys.argv[1], '--format', 'json']\n"
        "app()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    bad = {r["resolver"]: r["problems"] for r in report["resolvers"] if not r["ok"]}
    assert set(bad) == {"unbound-off", "unbound-stale"}
    assert "contradict their configuration" in done.stderr


def test_demo_cli_default_run(tmp_path: Path, repo: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    path = write_scenario(tmp_path, "127.0.39", DEMO_SET, name="demo")
    done = subprocess.run(
        [sys.executable, "-m", "rootcanary", "demo", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("as configured") == len(DEMO_SET)
    assert "all 6 resolvers behave as configured" in done.stderr


@pytest.mark.parametrize("retries", [0, 2])
def test_a_silent_resolver_becomes_a_failed_attempt(retries: int) -> None:
    # A real socket that never answers: the query must end as an observation
    # with rcode null and the attempts in the error, not as an exception.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        import asyncio

        test = PlannedTest("valid", "{label}.valid.canary.test.", "A")
        settings = ProbeSettings(timeout=0.2, retries=retries)
        obs = asyncio.run(query(Target("silent", "127.0.0.1", port), test, settings))
    finally:
        silent.close()
    assert obs.rcode is None and obs.ad is None
    assert obs.error == f"timeout after {retries + 1} attempt(s) of 0.2 s"
    assert obs.role == "valid" and obs.probe == "silent"
    assert (
        obs.qname.endswith(".valid.canary.test.") and obs.qname != "valid.canary.test."
    )


def test_schedule_local_then_classify(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        "127.0.36",
        [("u", "unbound", "validating"), ("off", "unbound", "off")],
        name="pipe",
    )
    env = {**os.environ, "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rootcanary", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )

    assert cli("testbed", "up", str(path)).returncode == 0
    try:
        sched = cli(
            "schedule",
            str(path),
            "--backend",
            "local",
            "--interval",
            "0.5s",
            "--duration",
            "1.2s",
            "-o",
            "camp",
        )
        assert sched.returncode == 0, sched.stderr
        assert "round 3:" in sched.stderr
    finally:
        assert cli("testbed", "down", str(path)).returncode == 0
    manifest = json.loads((tmp_path / "camp" / "manifest.json").read_text())
    assert (
        manifest["backend"] == "local" and manifest["extra"]["zone"] == "canary.test."
    )
    assert manifest["entries"][0]["rounds"] == 3
    result = cli("classify", "camp", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    states = {(r["probe"], r["validation"]) for r in records}
    assert states == {("u", "secure"), ("off", "insecure")}
