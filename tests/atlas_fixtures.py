"""Fixtures and helpers for the RIPE Atlas tests: the stand-in API and the CLI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from atlas_standin import StandIn, make_certificates, make_probes

#: A key that cannot appear by accident; tests grep for it and for parts of it.
KEY = "9c1f7e42-5b3a-4d6e-8f0a-c2b4d6e8f0a1"

BASE_SCENARIO = """\
name = "atlas-test"

[[zone]]
apex = "canary.example."
test_names = true

[tests]
zone = "canary.example."
{tests}

[atlas]
{atlas}

{probes}

[atlas.limits]
backoff = "10ms"
backoff_max = "50ms"
slot_poll = "50ms"
http_timeout = "20s"
{limits}
"""

FIVE_TESTS = """\
bogus = ["sig"]
keytags = [38696]
whoami = false
dnskey = true
"""


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def standin(certificates: tuple[Path, Path, Path]) -> Iterator[StandIn]:
    _, cert, key = certificates
    server = StandIn(cert, key, keys={KEY}, probe_catalogue=make_probes(40))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scenario(
    directory: Path,
    *,
    atlas: str = "oneoff = true",
    probes: str = "[[atlas.probes]]\nids = [1000, 1001, 1002]",
    tests: str = FIVE_TESTS,
    limits: str = "",
    name: str = "scenario.toml",
) -> Path:
    path = directory / name
    path.write_text(
        BASE_SCENARIO.format(tests=tests, atlas=atlas, probes=probes, limits=limits)
    )
    return path


def cli_env(
    server: StandIn | None, ca_file: Path | None, key: str | None = KEY
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIPE_ATLAS")}
    env.update(
        {
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "PYTHONWARNINGS": "error::DeprecationWarning",
        }
    )
    if key is not None:
        env["RIPE_ATLAS_CREATE_KEY"] = key
    if server is not None:
        env["ROOTCANARY_ATLAS_SERVER"] = server.server
    if ca_file is not None:
        env["ROOTCANARY_ATLAS_CA_FILE"] = str(ca_file)
    return env


def run_cli(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    input_text: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rootcanary", *args],
        env=env,
        cwd=cwd,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rootcanary", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def manifest(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return data


def stored_results(directory: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((directory / "results").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            out.extend(json.loads(line) for line in handle if line.strip())
    return out
