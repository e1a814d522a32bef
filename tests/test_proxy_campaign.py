"""A proxy campaign end to end, with real software everywhere but the provider.

Testbed resolvers (Unbound: validating, validation off, stale anchor, plus two
for the gateway's own pre-check), our server with its HTTP responder, squid
5.7 exits each using one of those resolvers, and the gateway stand-in in
front. After ``schedule``, ``fetch`` and ``classify`` each exit's vantage point
must have the state its resolver has when asked directly (the local backend,
same testbed, same run): the proxy path changes how we observe, not what.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rootcanary.backends.proxy_standin import Exit
from rootcanary.campaign import load_manifest
from rootcanary.cli import app
from rootcanary.scenario import load_scenario
from rootcanary.testbed import Testbed
from tests.proxy_util import (
    PASSWORD,
    PASSWORD_ENV,
    LoopThread,
    blackhole,
    gateway,
    loop_thread,
    silent_resolver,
    squids,
    stderr_capture,
)
from tests.test_proxy_prober import assert_no_secret
from tests.testbed_util import ZONES

pytestmark = pytest.mark.integration
# The testbed runs `rootcanary serve`, which needs the authoritative server.
pytest.importorskip("authserver.server", reason="needs the authoritative server")

B = "127.0.41"
SERVER, GATEWAY, GATEWAY2 = f"{B}.1", f"{B}.2", f"{B}.3"
RESOLVERS = {  # name: (variant, address)
    "validating": ("validating", f"{B}.11"),
    "off": ("off", f"{B}.12"),
    "stale": ("stale", f"{B}.13"),
    "precheck": ("off", f"{B}.14"),  # the gateway's own resolver
    "precheck-v": ("validating", f"{B}.15"),  # a validating pre-check
}
SQUIDS = {
    "va": ("validating", f"{B}.21"),
    "of": ("off", f"{B}.22"),
    "st": ("stale", f"{B}.23"),
}
TIMING_OUT = f"{B}.99"  # a resolver that never answers, for squid "to"


def scenario_text(gateway_port: int) -> str:
    text = f'name = "pxe"\n[server]\nlisten = ["{SERVER}:53"]\n'
    text += f'http_listen = ["{SERVER}:80"]\n'
    text += ZONES.format(server=SERVER)
    text += """
[tests]
bogus = ["sig"]
root_keytags = true
keytags = [20326]
whoami = false
dnskey = false
"""
    text += f"""
[proxy]
gateway = "http://{GATEWAY}:{gateway_port}"
params = {{ customer = "c_rootcanary", zone = "residential" }}
password_env = "{PASSWORD_ENV}"
countries = ["va", "of", "st", "va", "of", "st", "to", "dd"]
sessions = 8
concurrency = 8
rate = 0
timeout = "12s"
retry_delay = "0s"
provider_resolvers = ["{RESOLVERS["precheck"][1]}/32", "{RESOLVERS["precheck-v"][1]}"]

[testbed]
server = "{SERVER}"
run_dir = "run"
"""
    for name, (variant, address) in RESOLVERS.items():
        text += (
            f'[[testbed.resolver]]\nname = "{name}"\nimplementation = "unbound"\n'
            f'variant = "{variant}"\naddress = "{address}"\n'
        )
    return text


def settle(world: dict[str, Any], campaign: Path) -> None:
    """Wait until the server has flushed (every 0.5 s) the queries of every
    session that got past the gateway's authentication."""
    log = world["testbed"].query_log
    labels = {
        r["label"]
        for f in (campaign / "proxy").glob("requests-*.jsonl")
        for r in map(json.loads, f.open())
        if r["status"] not in (None, 407)
    }
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text().lower() if log.exists() else ""
        if all(label in text for label in labels):
            return
        time.sleep(0.2)
    raise AssertionError(f"queries for {labels} never reached {log}")


def cli(*argv: str) -> str:
    with stderr_capture() as err:
        result = CliRunner().invoke(app, list(argv))
    output = result.output + err.getvalue()
    assert result.exit_code == 0, output
    return output


def classify(campaign: Path, tags: list[str]) -> dict[tuple[Any, Any], dict[str, Any]]:
    options = [part for tag in tags for part in ("--keytag", tag)]
    text = cli("classify", str(campaign), "-f", "jsonl", *options)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return {(r["probe"], r["resolver"]): r for r in records}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("proxy-campaign")
    specs = [(n, a, RESOLVERS[v][1]) for n, (v, a) in SQUIDS.items()]
    specs.append(("to", f"{B}.24", TIMING_OUT))
    with (
        silent_resolver(TIMING_OUT),
        squids(specs, dns_timeout=1) as running,
        blackhole(f"{B}.25") as dead_port,
        loop_thread() as loop,
    ):
        exits = [Exit(n, s.url, n) for n, s in running.items()]
        exits.append(Exit("dd", f"http://{B}.25:{dead_port}", "dd"))
        precheck = (RESOLVERS["precheck"][1], 53)
        with gateway(loop, exits, GATEWAY, precheck=precheck) as gw:
            path = directory / "pxe.toml"
            path.write_text(scenario_text(gw.bound[0][1]))
            with Testbed(load_scenario(path)) as testbed:
                yield {
                    "dir": directory,
                    "scenario": path,
                    "testbed": testbed,
                    "loop": loop,
                    "exits": exits,
                    "squids": running,
                }


def test_each_exit_shows_its_resolvers_real_state(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    scenario, camp, local = world["scenario"], world["dir"] / "px", world["dir"] / "lc"
    out = cli("schedule", str(scenario), "--backend", "proxy", "-o", str(camp))
    assert "8 exits tried, 7 completed, 1 failed" in out
    settle(world, camp)
    out = cli("fetch", str(camp))
    join = load_manifest(camp).extra["join"]
    # The dead exit: 1 timeout + 5 skipped, not an observation, but counted.
    assert join["unjoinable"] == {"no exit identified (timeout)": 6}
    observations = [
        json.loads(line) for line in (camp / "observations" / "proxy.jsonl").open()
    ]
    assert len(observations) == 7 * 6
    precheck = {RESOLVERS["precheck"][1], RESOLVERS["precheck-v"][1]}
    assert not {o["resolver"] for o in observations} & precheck
    # The pre-check asked for every name the gateway passed on.
    assert all(o["provider_asked"] == [RESOLVERS["precheck"][1]] for o in observations)
    # The exit behind a resolver that times out: DNS errors, and only the
    # gateway's pre-check reached our server: inconclusive, nothing measured.
    timing_out = [o for o in observations if o["resolver"] is None]
    assert len(timing_out) == 6
    assert {(o["basis"], o["rcode"], o["status"]) for o in timing_out} == {
        ("dns-error-provider-only", None, 502)
    }

    cli("schedule", str(scenario), "--backend", "local", "--once", "-o", str(local))
    # The sentinel tags other than KSK-2017's are our private root's KSK.
    roles = load_manifest(camp).roles
    tags = sorted({r.split(":")[1] for r in roles if r.startswith("is-ta:")})
    assert len(tags) == 2 and "20326" in tags
    ours = next(tag for tag in tags if tag != "20326")
    truth = {r: state for (_, r), state in classify(local, tags).items()}
    states = classify(camp, tags)
    seen = set()
    for name, (variant, squid_address) in SQUIDS.items():
        resolver = RESOLVERS[variant][1]
        # The exit is the address our web server saw; an exit that fetched
        # nothing (the stale anchor fails every name) is known by its id.
        probe = squid_address if name != "st" else Exit(name, None).exit_id
        state = states[(probe, resolver)]
        expected = truth[resolver]
        assert state["validation"] == expected["validation"], name
        assert state["ta"] == expected["ta"], name
        seen.add(state["validation"])
    # And the three are really different states.
    assert seen == {"secure", "insecure", "bogus"}
    # The sentinel tags other than KSK-2017's are our private root's KSK.
    roles = load_manifest(camp).roles
    ours = next(
        r.split(":")[1] for r in roles if r.startswith("is-ta:") and "20326" not in r
    )
    assert states[(SQUIDS["va"][1], RESOLVERS["validating"][1])]["ta"][ours] == "Vnew"
    assert states[(SQUIDS["of"][1], RESOLVERS["off"][1])]["ta"][ours] == "nonV"
    # Every exit the web server saw came with squid's Via header.
    fetched = [o for o in observations if o["rcode"] == "NOERROR"]
    assert fetched and all("squid/5.7" in o["via"][0] for o in fetched)
    # The password reached the gateway and nothing else: not the campaign, not
    # the server's or the resolvers' logs, not squid's.
    directories = [world["dir"], *(s.directory for s in world["squids"].values())]
    for directory in directories:
        assert_no_secret(directory, [out], PASSWORD)


def test_a_validating_precheck_makes_bogus_inconclusive(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bright Data's gate resolves first; when it validates, a bogus name ends
    at the gate (502 target_40001) and says nothing about the exit."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    loop: LoopThread = world["loop"]
    exits = [e for e in world["exits"] if e.name == "of"]
    precheck = (RESOLVERS["precheck-v"][1], 53)
    with gateway(loop, exits, GATEWAY2, precheck=precheck) as gw:
        text = world["scenario"].read_text()
        path = world["dir"] / "gate.toml"
        lines = []
        for line in text.splitlines():
            if line.startswith("gateway ="):
                line = f'gateway = "http://{GATEWAY2}:{gw.bound[0][1]}"'
            elif line.startswith("countries ="):
                line = 'countries = ["of"]'
            elif line.startswith("sessions ="):
                line = "sessions = 1"
            lines.append(line)
        path.write_text(
            "\n".join(lines).replace('name = "pxe"', 'name = "gate"') + "\n"
        )
        camp = world["dir"] / "gate"
        cli("schedule", str(path), "--backend", "proxy", "-o", str(camp))
    settle(world, camp)
    cli("fetch", str(camp))
    observations = {
        o["role"]: o
        for o in map(json.loads, (camp / "observations" / "proxy.jsonl").open())
    }
    bogus = observations["bogus-sig"]
    assert (bogus["status"], bogus["error_code"]) == (502, "target_40001")
    assert bogus["rcode"] is None and bogus["basis"] == "dns-error-gateway"
    assert "inconclusive" in bogus["error"]
    assert bogus["provider_asked"] == [RESOLVERS["precheck-v"][1]]
    assert observations["valid"]["rcode"] == "NOERROR"
    assert observations["valid"]["resolver"] == RESOLVERS["off"][1]


def test_bad_credentials_are_counted_not_observed(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    camp = world["dir"] / "denied"
    out = cli("schedule", str(world["scenario"]), "--backend", "proxy", "-o", str(camp))
    assert "8 exits tried, 0 completed, 8 failed" in out
    cli("fetch", str(camp))
    join = load_manifest(camp).extra["join"]
    assert join["observations"] == 0
    assert join["unjoinable"] == {
        "no exit identified (auth_failed 407 client_10000)": 8 * 6
    }
    assert Counter(join["bases"]) == Counter()
