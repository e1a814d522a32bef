"""``rootcanary schedule --backend atlas`` against the stand-in Atlas API."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import atlas_fixtures as fx
from atlas_fixtures import cli_env, manifest, run_cli, scenario, start_cli
from atlas_standin import Fault, StandIn, make_probes

from rootcanary.backends.atlas.definitions import parse_slot

# The stand-in API and its certificates, as fixtures of this module.
certificates = fx.certificates
standin = fx.standin

CREATE = r"^/api/v2/measurements/$"


def _schedule(path: Path, campaign: Path, *extra: str) -> list[str]:
    return [
        "schedule",
        str(path),
        "--backend",
        "atlas",
        "--campaign",
        str(campaign),
        *extra,
    ]


def _wait_for(predicate: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.05)


def test_dry_run_prints_the_bodies_that_are_then_sent(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    campaign = tmp_path / "c"
    dry = run_cli(
        _schedule(path, campaign, "--dry-run", "--format", "json"), env, tmp_path
    )
    assert dry.returncode == 0, dry.stderr
    bodies = json.loads(dry.stdout)
    assert standin.requests() == []  # a dry run sends nothing at all
    assert "nothing was sent" in dry.stderr
    assert "5 measurements in 1 requests" in dry.stderr
    # 3 probes x 5 tests x 10 credits x 2 (one-off)
    assert "300 credits per day" in dry.stderr

    real = run_cli(_schedule(path, campaign, "--yes"), env, tmp_path)
    assert real.returncode == 0, real.stderr
    sent = [item.body for item in standin.requests("POST", CREATE)]
    assert sent == bodies

    (body,) = bodies
    roles = [e["role"] for e in manifest(campaign)["entries"]]
    assert roles == ["valid", "bogus-sig", "is-ta:38696", "not-ta:38696", "dnskey"]
    for definition in body["definitions"]:
        assert definition["use_probe_resolver"] is True
        assert definition["set_do_bit"] is True and definition["set_cd_bit"] is False
        assert definition["udp_payload_size"] == 1232
        assert definition["include_abuf"] is True
        assert definition["prepend_probe_id"] is False
    sentinel = body["definitions"][2]["query_argument"]
    # RFC 8509 §2.1: the sentinel label stays leftmost, the unique label follows.
    assert sentinel == "root-key-sentinel-is-ta-38696.$p-$r.sentinel.canary.example"
    assert body["definitions"][2]["use_macros"] is True
    assert body["definitions"][4]["query_argument"] == "."
    assert body["definitions"][4]["use_macros"] is False
    assert body["probes"] == [
        {"type": "probes", "value": "1000,1001,1002", "requested": 3}
    ]
    assert body["is_oneoff"] is True

    data = manifest(campaign)
    ids = sorted(m.id for m in standin.created())
    assert sorted(int(k) for k in data["roles"]) == ids
    assert data["backend"] == "atlas" and data["extra"]["zone"] == "canary.example."
    assert all(e["msm_id"] and e["created"] for e in data["entries"])
    # stdout lists what was created, one line each
    assert len(real.stdout.strip().splitlines()) == 5


def test_confirmation_is_required_without_yes(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    refused = run_cli(_schedule(path, tmp_path / "c"), env, tmp_path, input_text="n\n")
    assert refused.returncode == 1
    assert "nothing was created" in refused.stderr
    assert standin.requests("POST") == []
    agreed = run_cli(_schedule(path, tmp_path / "c"), env, tmp_path, input_text="y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert len(standin.created()) == 5


def test_requests_over_the_probe_limit_are_split_by_probe_id(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.max_probes = 10
    env = cli_env(standin, certificates[0])
    probes = (
        '[[atlas.probes]]\nall = true\nrequested = "all"\n'
        'include_tags = ["system-ipv4-works"]\nexclude_tags = ["system-anchor"]'
    )
    path = scenario(tmp_path, probes=probes, limits="max_probes = 10")
    result = run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path)
    assert result.returncode == 0, result.stderr

    expected = {
        p["id"]
        for p in standin.probe_catalogue
        if p["status"]["id"] == 1
        and "system-anchor" not in {t["slug"] for t in p["tags"]}
    }
    posts = standin.requests("POST", CREATE)
    assert len(posts) == -(-len(expected) // 10)
    seen: list[int] = []
    for post in posts:
        assert post.status == 201
        (source,) = post.body["probes"]
        ids = [int(i) for i in source["value"].split(",")]
        assert source["type"] == "probes" and len(ids) <= 10
        assert source["requested"] == len(ids)
        seen.extend(ids)
    assert len(seen) == len(set(seen))  # disjoint parts
    assert set(seen) == expected
    assert len(standin.created()) == 5 * len(posts)
    assert standin.requests("GET", "^/api/v2/probes/$")


def test_concurrency_is_kept_under_the_account_limit(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.max_concurrent = 4
    standin.oneoff_seconds = 0.3
    env = cli_env(standin, certificates[0])
    path = scenario(
        tmp_path,
        probes="[[atlas.probes]]\nids = [1000, 1001, 1002, 1003]",
        limits="max_concurrent = 4\nmax_probes = 2",
    )
    result = run_cli(
        _schedule(path, tmp_path / "c", "--yes", "--wait-for-slots", "60s"),
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert len(standin.created()) == 10
    assert standin.max_running_seen <= 4
    assert all(post.status == 201 for post in standin.requests("POST", CREATE))
    # The parts of one request were created in several batches, on the same probes.
    by_request: dict[int, set[tuple[int, ...]]] = {}
    for entry in manifest(tmp_path / "c")["entries"]:
        msm = next(m for m in standin.created() if m.id == entry["msm_id"])
        by_request.setdefault(entry["request"], set()).add(tuple(msm.probes))
    assert all(len(probe_sets) == 1 for probe_sets in by_request.values())


def test_without_waiting_a_full_account_stops_the_run(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.max_concurrent = 3
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path, limits="max_concurrent = 3")
    result = run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path)
    assert result.returncode == 1
    assert "limit is 3: 3 of 5 measurements of this campaign exist" in result.stderr
    assert len(standin.created()) == 3
    assert sum(1 for e in manifest(tmp_path / "c")["entries"] if e["msm_id"]) == 3


def test_429_and_5xx_are_retried_with_backoff(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.inject(Fault("POST", CREATE, status=429, times=2, retry_after="0"))
    standin.inject(Fault("GET", "^/api/v2/measurements/my/$", status=503, times=2))
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    result = run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.status for p in standin.requests("POST", CREATE)] == [429, 429, 201]
    assert len(standin.created()) == 5
    assert "HTTP 429" in result.stderr and "retrying" in result.stderr
    assert "HTTP 503" in result.stderr


def test_a_5xx_after_creation_is_reconciled_not_repeated(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.inject(Fault("POST", CREATE, action="after", status=502))
    env = cli_env(standin, certificates[0])
    result = run_cli(
        _schedule(scenario(tmp_path), tmp_path / "c", "--yes"), env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(standin.requests("POST", CREATE)) == 1
    assert len(standin.created()) == 5
    assert "adopted" in result.stderr
    data = manifest(tmp_path / "c")
    assert sorted(e["msm_id"] for e in data["entries"]) == [
        m.id for m in standin.created()
    ]


def test_a_mangled_success_is_reconciled_not_repeated(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.inject(Fault("POST", CREATE, action="after", status=201))
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    result = run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "without one id per definition" in result.stderr
    assert len(standin.requests("POST", CREATE)) == 1
    assert len(standin.created()) == 5


def test_a_5xx_before_creation_is_created_once(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.inject(Fault("POST", CREATE, status=503))
    env = cli_env(standin, certificates[0])
    result = run_cli(
        _schedule(scenario(tmp_path), tmp_path / "c", "--yes"), env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert [p.status for p in standin.requests("POST", CREATE)] == [503, 201]
    assert len(standin.created()) == 5


def test_api_errors_stop_the_run_with_message_and_pointer(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    standin.query_types.discard("DNSKEY")
    env = cli_env(standin, certificates[0])
    result = run_cli(
        _schedule(scenario(tmp_path), tmp_path / "c", "--yes"), env, tmp_path
    )
    assert result.returncode == 1
    assert (
        "HTTP 400 Bad Request: There were problems with your request" in result.stderr
    )
    assert "/definitions/4/query_type: Not a valid query type." in result.stderr
    assert "/definitions/4/query_type is the dnskey test" in result.stderr
    assert standin.created() == []


def test_a_bad_key_gets_the_api_message(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    env = cli_env(standin, certificates[0], key="not-a-key-0000")
    result = run_cli(
        _schedule(scenario(tmp_path), tmp_path / "c", "--yes"), env, tmp_path
    )
    assert result.returncode == 1
    assert "HTTP 403 Forbidden: The provided API key does not exist" in result.stderr
    assert "not-a-key-0000" not in result.stderr + result.stdout
    assert standin.created() == []


def test_a_crash_in_the_middle_of_creation_then_a_rerun_creates_no_duplicate(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    # Three requests of five definitions; the second is carried out by the
    # server, which then never answers: the client is killed while waiting.
    standin.inject(Fault("POST", CREATE, action="hang-after", skip=1))
    env = cli_env(standin, certificates[0])
    path = scenario(
        tmp_path,
        probes="[[atlas.probes]]\nids = [1000, 1001, 1002, 1003, 1004, 1005]",
        limits="max_probes = 2",
    )
    campaign = tmp_path / "c"
    process = start_cli(_schedule(path, campaign, "--yes"), env, tmp_path)
    try:
        _wait_for(lambda: len(standin.created()) == 10)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        assert process.stdout and process.stderr
        process.stdout.close()
        process.stderr.close()
    before = manifest(campaign)
    assert before["extra"]["attempted"] is True
    assert sum(1 for e in before["entries"] if e["msm_id"]) == 5

    rerun = run_cli(_schedule(path, campaign, "--yes"), env, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "5 created, 5 adopted" in rerun.stderr
    created = standin.created()
    assert len(created) == 15
    tag = before["extra"]["tag"]
    slots = [parse_slot(m.definition["description"], tag) for m in created]
    assert sorted(slots) == list(range(15))  # one measurement per slot, no duplicate
    after = manifest(campaign)
    assert sorted(e["msm_id"] for e in after["entries"]) == [m.id for m in created]

    again = run_cli(_schedule(path, campaign, "--yes"), env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to create" in again.stderr
    assert len(standin.created()) == 15


def test_a_changed_scenario_is_refused_once_creation_began(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    assert (
        run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path).returncode == 0
    )
    path.write_text(
        path.read_text().replace("ids = [1000, 1001, 1002]", "ids = [1000]")
    )
    result = run_cli(_schedule(path, tmp_path / "c", "--yes"), env, tmp_path)
    assert result.returncode == 1
    assert "the scenario changed after measurements" in result.stderr
    assert len(standin.created()) == 5


def test_a_placeholder_zone_is_refused_on_the_public_platform(tmp_path: Path) -> None:
    env = cli_env(None, None)
    result = run_cli(
        _schedule(scenario(tmp_path), tmp_path / "c", "--yes"), env, tmp_path
    )
    assert result.returncode == 1
    assert "canary.example. is a placeholder" in result.stderr
    assert not (tmp_path / "c").exists()


def test_shipped_scenarios_dry_run_offline(tmp_path: Path, repo: Path) -> None:
    env = cli_env(None, None)
    canary = run_cli(
        [
            "schedule",
            str(repo / "scenarios" / "root-canary.toml"),
            "--campaign",
            str(tmp_path / "canary"),
            "--dry-run",
            "--format",
            "json",
        ],
        env,
        tmp_path,
    )
    assert canary.returncode == 0, canary.stderr
    (body,) = json.loads(canary.stdout)
    assert len(body["definitions"]) == 40
    assert body["probes"][0]["type"] == "area" and body["probes"][0]["requested"] == 500
    assert "is a placeholder" in canary.stderr  # warned, not refused, in a dry run

    # All probes must be split by id: from a saved probe list, offline.
    probe_file = tmp_path / "probes.json"
    probe_file.write_text(json.dumps({"objects": make_probes(2500)}))
    ksk = run_cli(
        [
            "schedule",
            str(repo / "scenarios" / "ksk-2024.toml"),
            "--campaign",
            str(tmp_path / "ksk"),
            "--dry-run",
            "--format",
            "json",
            "--probes-file",
            str(probe_file),
        ],
        env,
        tmp_path,
    )
    assert ksk.returncode == 0, ksk.stderr
    bodies = json.loads(ksk.stdout)
    connected = sum(1 for p in make_probes(2500) if p["status"]["id"] == 1)
    assert [len(b["definitions"]) for b in bodies] == [8] * -(-connected // 1000)
    ids = [int(i) for b in bodies for s in b["probes"] for i in s["value"].split(",")]
    assert len(ids) == len(set(ids)) == connected
    dnskey = bodies[0]["definitions"][-1]
    assert dnskey["query_type"] == "DNSKEY" and dnskey["udp_payload_size"] == 4096
    assert all(d["interval"] == 3600 for b in bodies for d in b["definitions"])
    assert "more than the daily spending limit" in ksk.stderr
