"""Rollover replay: the root's phases, expectations, and a shortened real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from authserver.rollover import root_key_specs
from rootcanary.errors import ScenarioError
from rootcanary.replay import expected_outcome
from rootcanary.scenario import load_scenario
from rootcanary.scenario.rollover import Phase, RolloverSpec
from rootcanary.scenario.zones import DEFAULT_KEYS, KeySpec

ROLL = RolloverSpec(
    phases=(
        Phase("publish", 10),
        Phase("roll", 30),
        Phase("revoke", 45),
        Phase("remove", 60),
    ),
    old="ksk",
    new="ksk-next",
)


@pytest.mark.parametrize(
    ("phase", "published", "revoked", "signers"),
    [
        ("start", {"ksk"}, set(), {"ksk"}),
        ("publish", {"ksk", "ksk-next"}, set(), {"ksk"}),
        ("roll", {"ksk", "ksk-next"}, set(), {"ksk-next"}),
        # RFC 5011 §2.1: the revoked key signs the set that revokes it.
        ("revoke", {"ksk", "ksk-next"}, {"ksk"}, {"ksk", "ksk-next"}),
        ("remove", {"ksk-next"}, set(), {"ksk-next"}),
    ],
)
def test_root_keys_per_phase(
    phase: str, published: set[str], revoked: set[str], signers: set[str]
) -> None:
    specs = root_key_specs(DEFAULT_KEYS, ROLL, phase)
    ksks = [k for k in specs if k.sep]
    assert {k.slot for k in ksks if k.publish} == published
    assert {k.slot for k in ksks if k.revoke} == revoked
    assert {k.slot for k in ksks if k.signs_dnskey} == signers
    # The ZSK keeps signing the zone in every phase.
    assert [k.slot for k in specs if k.signs_zone] == ["zsk"]


def test_other_ksk_slots_leave_the_root_during_a_replay() -> None:
    keys = (*DEFAULT_KEYS, KeySpec("extra", sep=True, signs_dnskey=True))
    spec = RolloverSpec(phases=ROLL.phases, old="ksk-2010", new="ksk-2017")
    slots = {k.slot for k in root_key_specs(keys, spec, "publish")}
    assert slots == {"zsk", "ksk-2010", "ksk-2017"}


def test_phase_at() -> None:
    assert [ROLL.phase_at(t) for t in (0, 10, 29.9, 30, 50, 99)] == [
        "start",
        "publish",
        "publish",
        "roll",
        "revoke",
        "remove",
    ]


SCENARIO = """
name = "replay"
[server]
listen = ["{server}:53"]
[zone_defaults]
algorithm = 13
ttl = 10
dnskey_ttl = 10
[[zone]]
apex = "."
nameservers = [{{ name = "a.root-servers.", addresses = ["{server}"] }}]
[[zone]]
apex = "test."
[[zone]]
apex = "canary.test."
test_names = true
answer_v4 = "{server}"
[testbed]
server = "{server}"
run_dir = "run"
holddown = "{holddown}"
refresh = "4s"
{resolvers}
[rollover]
probe_interval = "2s"
settle = "{settle}"
{timeline}
"""


def write(
    directory: Path,
    block: str,
    resolvers: list[tuple[str, str, str]],
    timeline: str,
    holddown: str = "8s",
    settle: str = "20s",
) -> Path:
    text = "".join(
        f'[[testbed.resolver]]\nname = "{n}"\nimplementation = "{i}"\nvariant = "{v}"\n'
        f'address = "{block}.{11 + k}"\n'
        for k, (n, i, v) in enumerate(resolvers)
    )
    path = directory / "replay.toml"
    path.write_text(
        SCENARIO.format(
            server=f"{block}.1",
            resolvers=text,
            timeline=timeline,
            holddown=holddown,
            settle=settle,
        )
    )
    return path


TIMELINE = """
[[rollover.phase]]
state = "publish"
at = "8s"
[[rollover.phase]]
state = "roll"
at = "32s"
[[rollover.phase]]
state = "revoke"
at = "44s"
[[rollover.phase]]
state = "remove"
at = "54s"
"""


def test_expectations_follow_the_configuration(tmp_path: Path) -> None:
    resolvers = [
        ("u", "unbound", "validating"),
        ("s", "unbound", "static"),
        ("p", "pdns-recursor", "validating"),
        ("o", "unbound", "off"),
        ("x", "unbound", "stale"),
        ("us", "unbound", "stateless"),
        ("bs", "bind", "stateless"),
        ("ks", "kresd", "stateless"),
    ]
    restarts = "".join(
        f'[[rollover.restart]]\nresolver = "{name}"\n'
        'at = ["12s", "18s", "24s", "30s"]\n'
        for name in ("us", "bs", "ks")
    )
    scenario = load_scenario(
        write(tmp_path, "127.0.52", resolvers, TIMELINE + restarts)
    )
    assert scenario.testbed is not None
    got = {r.name: expected_outcome(r, scenario)[0] for r in scenario.testbed.resolvers}
    assert got == {
        "u": "survives",
        "s": "breaks",
        "p": "breaks",
        "o": "insecure",
        "x": "breaks",
        # Restarted every 6 s with an 8 s hold-down: never completes it ...
        "us": "breaks",
        "ks": "breaks",
        # ... but BIND trusts the validated set whenever it initialises.
        "bs": "survives",
    }


def test_restart_of_an_unknown_resolver_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "127.0.52",
        [("u", "unbound", "validating")],
        TIMELINE + '[[rollover.restart]]\nresolver = "nobody"\nat = "5s"\n',
    )
    with pytest.raises(ScenarioError, match=r"rollover.restart\[0\].resolver: no "):
        load_scenario(path)


def test_phases_out_of_order_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "127.0.52",
        [("u", "unbound", "validating")],
        '[[rollover.phase]]\nstate = "roll"\nat = "5s"\n'
        '[[rollover.phase]]\nstate = "publish"\nat = "9s"\n',
    )
    with pytest.raises(
        ScenarioError, match=r"rollover.phase\[1\].state: 'publish' cannot"
    ):
        load_scenario(path)


@pytest.mark.integration
def test_a_short_replay_against_real_resolvers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "127.0.53",
        [("managed", "unbound", "validating"), ("static", "unbound", "static")],
        TIMELINE,
    )
    done = subprocess.run(
        [sys.executable, "-m", "rootcanary", "testbed", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "replay.json").read_text())
    assert [p["state"] for p in summary["phases"]] == [
        "start",
        "publish",
        "roll",
        "revoke",
        "remove",
    ]
    offsets = {p["state"]: p["offset"] for p in summary["phases"]}
    verdicts = {v["resolver"]: v for v in summary["verdicts"]}
    managed, static = verdicts["managed"], verdicts["static"]
    assert (managed["expected"], managed["outcome"], managed["ok"]) == (
        "survives",
        "survived",
        True,
    )
    assert (static["expected"], static["outcome"], static["ok"]) == (
        "breaks",
        "broke",
        True,
    )

    def offset(moment: str) -> float:
        from rootcanary.observation import parse_time

        return (parse_time(moment) - parse_time(summary["started"])).total_seconds()

    # RFC 5011: the new key is trusted after the hold-down, before the roll;
    # the revoked one is dropped after the revocation.
    assert offsets["publish"] + 8 <= offset(managed["trusted_new_at"]) < offsets["roll"]
    assert offset(managed["dropped_revoked_at"]) >= offsets["revoke"]
    assert managed["secure_through_roll"] is True
    assert static["trusted_new_at"] is None
    assert offset(static["first_bogus_at"]) >= offsets["roll"]
    # RFC 8145 at the root: the managed resolver's key-tag set goes
    # {old} -> {old, new} -> {new}; the static one never changes.
    old, new = summary["keys"]["old"]["tag"], summary["keys"]["new"]["tag"]
    by_src: dict[str, list[list[int]]] = {}
    for change in summary["keytag_sets"]:
        by_src.setdefault(change["src"], []).append(change["tags"])
    assert by_src["127.0.53.11"] == [[old], sorted([old, new]), [new]]
    assert by_src["127.0.53.12"] == [[old]]
    phases_seen = {
        r["phase"] for r in summary["dnskey_rates"] if r["src"] == "127.0.53.11"
    }
    assert {"roll", "revoke", "remove"} <= phases_seen
    assert "every resolver went through the rollover as configured" in done.stderr
    # The server logged every switch; nothing is left running.
    events = [
        json.loads(line)
        for line in (tmp_path / "run" / "server" / "events.jsonl")
        .read_text()
        .splitlines()
    ]
    assert [e["state"] for e in events if e["event"] == "phase"] == [
        "publish",
        "roll",
        "revoke",
        "remove",
    ]
    revoke = next(e for e in events if e["state"] == "revoke")
    assert summary["keys"]["old"]["revoked_tag"] in revoke["dnskey"]
    assert summary["keys"]["old"]["revoked_tag"] in revoke["signers"]
    assert not (tmp_path / "run" / "testbed.json").exists()
