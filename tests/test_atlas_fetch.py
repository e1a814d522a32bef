"""``rootcanary fetch``, ``status`` and ``stop`` against the stand-in Atlas API."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import atlas_fixtures as fx
from atlas_fixtures import (
    cli_env,
    manifest,
    run_cli,
    scenario,
    start_cli,
    stored_results,
)
from atlas_standin import Fault, StandIn

from rootcanary.backends.atlas.store import identity

certificates = fx.certificates
standin = fx.standin

RESULTS = r"^/api/v2/measurements/\d+/results"
PERIODIC = 'interval = "60s"\nduration = "1d"'
TWO_TESTS = "bogus = []\nwhoami = false\ndnskey = true"
SIX_PROBES = "[[atlas.probes]]\nids = [1000, 1001, 1002, 1003, 1004, 1005]"


def _scheduled(
    tmp_path: Path, server: StandIn, ca: Path, past: float = 0.0
) -> tuple[Path, dict[str, str]]:
    # A stopped clock: results depend on advance() only, not on the test's speed.
    server.freeze()
    server.advance(-past)
    env = cli_env(server, ca)
    path = scenario(tmp_path, atlas=PERIODIC, tests=TWO_TESTS, probes=SIX_PROBES)
    campaign = tmp_path / "c"
    result = run_cli(
        ["schedule", str(path), "--campaign", str(campaign), "--yes"], env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    return campaign, env


def _expected(server: StandIn) -> list[dict[str, object]]:
    with server.lock:
        now = server.now()
        return [
            r for m in server.measurements.values() for r in server.results_of(m, now)
        ]


def _digests(rows: list[dict[str, object]]) -> list[str]:
    return sorted(identity(r) for r in rows)


def test_fetch_is_incremental_and_stores_each_result_once(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    campaign, env = _scheduled(tmp_path, standin, certificates[0])
    standin.advance(600)
    first = run_cli(["fetch", str(campaign)], env, tmp_path)
    assert first.returncode == 0, first.stderr
    stored = stored_results(campaign)
    assert stored and _digests(stored) == _digests(_expected(standin))

    resume = max(int(r["timestamp"]) for r in stored)
    standin.advance(900)
    second = run_cli(
        ["fetch", str(campaign), "--window", "5m", "--overlap", "5m"], env, tmp_path
    )
    assert second.returncode == 0, second.stderr
    stored = stored_results(campaign)
    # Equal multisets: nothing lost, nothing stored twice (results share
    # timestamps, and the resume point is asked for again: start is inclusive).
    assert _digests(stored) == _digests(_expected(standin))
    # The second fetch asked again only from the overlap before what was stored.
    starts = [int(r.query["start"]) for r in standin.requests("GET", RESULTS)]
    assert min(starts[2:]) == resume - 300

    data = manifest(campaign)
    for path in (campaign / "results").rglob("*.jsonl.gz"):
        assert path.parent.name in data["roles"]
    for row in stored:
        assert str(row["msm_id"]) in data["roles"]


def test_late_results_within_the_overlap_are_picked_up(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.late = {1003: 400}  # this probe uploads 400 s after measuring
    campaign, env = _scheduled(tmp_path, standin, certificates[0])
    standin.advance(600)
    assert run_cli(["fetch", str(campaign)], env, tmp_path).returncode == 0
    before = {identity(r) for r in stored_results(campaign)}
    standin.advance(300)
    result = run_cli(["fetch", str(campaign), "--overlap", "15m"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    stored = stored_results(campaign)
    assert _digests(stored) == _digests(_expected(standin))
    late = [r for r in stored if identity(r) not in before and r["prb_id"] == 1003]
    resume = max(r["timestamp"] for r in stored if identity(r) in before)
    assert any(r["timestamp"] < resume for r in late)


def test_an_interrupted_fetch_resumes_without_loss_or_repeat(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    # Created half an hour ago (server time), so that the results spread over
    # several of the client's windows.
    campaign, env = _scheduled(tmp_path, standin, certificates[0], past=1800)
    standin.advance(1800)
    # The ninth results request is never answered: kill the client there.
    standin.inject(Fault("GET", RESULTS, action="hang-after", skip=8))
    process = start_cli(["fetch", str(campaign), "--window", "5m"], env, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(standin.requests("GET", RESULTS)) < 9:
            assert time.monotonic() < deadline, "fetch did not get far enough"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        assert process.stdout and process.stderr
        process.stdout.close()
        process.stderr.close()
    partial = stored_results(campaign)
    assert partial  # what the first windows brought is durable
    assert len(partial) < len(_expected(standin))

    rerun = run_cli(["fetch", str(campaign), "--window", "5m"], env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert _digests(stored_results(campaign)) == _digests(_expected(standin))
    leftovers = [
        p for p in (campaign / "results").rglob("*") if p.name.endswith(".tmp")
    ]
    assert leftovers == []


def test_fetch_retries_server_errors(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    campaign, env = _scheduled(tmp_path, standin, certificates[0])
    standin.advance(300)
    standin.inject(Fault("GET", RESULTS, status=500, times=2))
    standin.inject(Fault("GET", RESULTS, status=429, times=1, retry_after="0", skip=0))
    result = run_cli(["fetch", str(campaign)], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _digests(stored_results(campaign)) == _digests(_expected(standin))
    assert "HTTP 500" in result.stderr


def test_status_shows_states_and_stored_counts(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    campaign, env = _scheduled(tmp_path, standin, certificates[0])
    standin.advance(120)
    assert run_cli(["fetch", str(campaign)], env, tmp_path).returncode == 0
    result = run_cli(["status", str(campaign), "--format", "json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    expected = _expected(standin)
    for row in rows:
        assert row["state"] == "Ongoing"
        assert row["probes"] == 6
        assert row["stored_results"] == sum(
            1 for r in expected if r["msm_id"] == row["msm_id"]
        )
    table = run_cli(["status", str(campaign), "--offline"], env, tmp_path)
    assert table.returncode == 0, table.stderr
    assert "dnskey" in table.stdout and "valid" in table.stdout


def test_stop_some_then_all_and_record_it(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    campaign, env = _scheduled(tmp_path, standin, certificates[0])
    first = run_cli(["stop", str(campaign), "--role", "dnskey", "--yes"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    entries = {e["role"]: e for e in manifest(campaign)["entries"]}
    assert entries["dnskey"]["stopped"] and not entries["valid"]["stopped"]
    deletes = standin.requests("DELETE")
    assert [d.path.rstrip("/").rsplit("/", 1)[1] for d in deletes] == [
        str(entries["dnskey"]["msm_id"])
    ]
    rest = run_cli(["stop", str(campaign), "--yes"], env, tmp_path)
    assert rest.returncode == 0, rest.stderr
    assert len(standin.requests("DELETE")) == 2
    status = run_cli(["status", str(campaign), "--format", "json"], env, tmp_path)
    assert {json.loads(line)["state"] for line in status.stdout.splitlines()} == {
        "Stopped"
    }
    again = run_cli(["stop", str(campaign), "--yes"], env, tmp_path)
    assert again.returncode == 0 and "nothing to stop" in again.stderr
    assert len(standin.requests("DELETE")) == 2


def test_fetch_of_a_local_campaign_needs_nothing(tmp_path: Path) -> None:
    campaign = tmp_path / "local"
    campaign.mkdir()
    (campaign / "manifest.json").write_text(
        json.dumps(
            {"schema_version": 1, "name": "x", "backend": "local", "created": "now"}
        )
    )
    result = run_cli(["fetch", str(campaign)], cli_env(None, None), tmp_path)
    assert result.returncode == 0
    assert "needs no fetch" in result.stderr
