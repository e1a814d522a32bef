"""The testbed with all four implementations, against our own server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from testbed_util import write_scenario

from rootcanary import names
from rootcanary.errors import MissingBinaryError, ScenarioError, TestbedError
from rootcanary.scenario import load_scenario
from rootcanary.testbed import RunningResolver, Testbed, resolvers

pytestmark = pytest.mark.integration

BLOCK = "127.0.31"
ZONE = "canary.test."
ALL = [
    ("unbound", "unbound", "validating"),
    ("bind", "bind", "validating"),
    ("kresd", "kresd", "validating"),
    ("pdns", "pdns-recursor", "validating"),
    ("unbound-off", "unbound", "off"),
    ("bind-off", "bind", "off"),
    ("kresd-off", "kresd", "off"),
    ("pdns-off", "pdns-recursor", "off"),
    ("unbound-stale", "unbound", "stale"),
    ("bind-stale", "bind", "stale"),
    ("kresd-stale", "kresd", "stale"),
    ("pdns-stale", "pdns-recursor", "stale"),
    ("unbound-static", "unbound", "static"),
    ("bind-static", "bind", "static"),
    ("kresd-static", "kresd", "static"),
    ("unbound-stateless", "unbound", "stateless"),
    ("bind-stateless", "bind", "stateless"),
    ("kresd-stateless", "kresd", "stateless"),
]


def ask(address: str, qname: str, qtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, want_dnssec=True, payload=1232)
    return dns.query.udp(query, address, timeout=5)


def outcome(response: dns.message.Message) -> str:
    """Y: an answer (RFC 8509 §3 notation), S: SERVFAIL, else the rcode."""
    rcode = response.rcode()
    if rcode == dns.rcode.NOERROR and response.answer:
        return "Y"
    return "S" if rcode == dns.rcode.SERVFAIL else dns.rcode.to_text(rcode)


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    directory = tmp_path_factory.mktemp("testbed")
    scenario = load_scenario(write_scenario(directory, BLOCK, ALL))
    with Testbed(scenario) as running:
        yield running


@pytest.mark.parametrize(("name", "implementation", "variant"), ALL)
def test_each_variant_behaves_as_configured(
    testbed: Testbed, name: str, implementation: str, variant: str
) -> None:
    address = testbed.resolver(name).address
    assert testbed.anchor is not None
    ours = testbed.anchor.keytags[0]
    label = names.fresh_label()
    valid = ask(address, names.valid_name(ZONE, label))
    bogus = ask(address, names.bogus_name(ZONE, "sig", label))
    is_ta = ask(address, names.sentinel_name(ZONE, "is-ta", ours, label))
    not_ta = ask(address, names.sentinel_name(ZONE, "not-ta", ours, label))
    pattern = "".join(outcome(r) for r in (is_ta, not_ta, bogus))
    if variant == "off":
        assert outcome(valid) == "Y" and not valid.flags & dns.flags.AD
        assert pattern == "YYY"  # nonV
    elif variant == "stale":
        assert outcome(valid) == "S"
    else:
        assert outcome(valid) == "Y" and valid.flags & dns.flags.AD
        # PowerDNS Recursor 4.8 has no RFC 8509 sentinel: Vind; others: Vnew.
        assert pattern == ("YYS" if implementation == "pdns-recursor" else "YSS")


@pytest.mark.parametrize("name", ["unbound", "bind", "kresd", "pdns"])
def test_whoami_is_the_resolvers_own_outgoing_address(
    testbed: Testbed, name: str
) -> None:
    resolver = testbed.resolver(name)
    response = ask(
        resolver.address, names.whoami_name(ZONE, names.fresh_label()), "TXT"
    )
    assert outcome(response) == "Y"
    assert response.flags & dns.flags.AD
    texts = [
        rd.to_text().strip('"')
        for rrset in response.answer
        for rd in rrset
        if rrset.rdtype == dns.rdatatype.TXT
    ]
    assert texts == [resolver.address]


def _lastchange(resolver: RunningResolver) -> int:
    """When Unbound's autotrust file says the trust point last changed."""
    text = (resolver.directory / "root.key").read_text()
    match = re.search(r";;lastchange=(\d+)", text)
    assert match, text
    return int(match.group(1))


def test_stateless_resolver_loses_its_state_on_restart(testbed: Testbed) -> None:
    before = {name: testbed.resolver(name) for name in ("unbound-stateless", "unbound")}
    changed = {name: _lastchange(r) for name, r in before.items()}
    time.sleep(1.2)  # lastchange has one-second resolution
    for name, old in before.items():
        assert testbed.restart(name).pid != old.pid
    # The managed anchor's RFC 5011 state survives; the stateless one starts over.
    assert _lastchange(testbed.resolver("unbound")) == changed["unbound"]
    assert (
        _lastchange(testbed.resolver("unbound-stateless"))
        > changed["unbound-stateless"]
    )
    for name in before:
        response = ask(testbed.resolver(name).address, names.valid_name(ZONE, "r1"))
        assert response.flags & dns.flags.AD


def test_down_leaves_no_process_even_after_a_failure(tmp_path: Path) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "127.0.32", [*ALL[:4], ALL[4]], name="fail")
    )
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), Testbed(scenario) as testbed:
        pids = testbed.pids
        assert len(pids) == 6 and all(Path(f"/proc/{p}").exists() for p in pids)
        raise RuntimeError("boom")
    assert pids
    assert [p for p in pids if _alive(p)] == []
    assert not (tmp_path / "run" / "testbed.json").exists()


def test_two_resolvers_on_one_endpoint_are_rejected(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path, "127.0.33", [("u1", "unbound", "off")], name="clash"
    )
    path.write_text(
        path.read_text()
        + '[[testbed.resolver]]\nname = "k1"\nimplementation = "kresd"\n'
        'variant = "off"\naddress = "127.0.33.11"\n'
    )
    with pytest.raises(ScenarioError, match=r"resolver\[1\].address: .* used twice"):
        load_scenario(path)


def test_a_resolver_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "127.0.33", [("u", "unbound", "off")])
    )
    # Occupy the resolver's address and port so that Unbound cannot bind it.
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.33.11", 53))
    try:
        with pytest.raises(
            TestbedError, match=r"(?s)u \(unbound\) exited .*/u\.log\).*already in use"
        ):
            Testbed(scenario).up()
    finally:
        blocker.close()
    assert not (tmp_path / "run" / "testbed.json").exists()


def test_missing_binary_names_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "127.0.34", [("k", "kresd", "off")])
    )
    monkeypatch.setitem(
        resolvers.BINARIES, "kresd", ("kresd-not-installed", "knot-resolver")
    )
    import rootcanary.testbed as testbed_module

    monkeypatch.setattr(testbed_module, "BINARIES", resolvers.BINARIES)
    with pytest.raises(MissingBinaryError, match="apt-get install knot-resolver"):
        Testbed(scenario).up()


def test_cli_up_status_down(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path, "127.0.35", [("u", "unbound", "validating"), ("b", "bind", "off")]
    )
    env = {**os.environ, "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rootcanary", "testbed", *args, str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    up = cli("up")
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "run" / "testbed.json").read_text())
    pids = [p["pid"] for p in state["processes"]]
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    status = cli("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("running") == 3
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert [p for p in pids if _alive(p)] == []
    after = cli("status")
    assert after.returncode == 1 and "no testbed is running" in after.stderr


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def test_testbed_needs_loopback_addresses(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "127.0.36", [("u", "unbound", "off")])
    path.write_text(
        path.read_text().replace('address = "127.0.36.11"', 'address = "10.1.1.1"')
    )
    with pytest.raises(Exception, match="must be loopback"):
        load_scenario(path)


def test_testbed_without_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\n')
    with pytest.raises(TestbedError, match="no \\[testbed\\] section"):
        Testbed(load_scenario(path))


def test_the_classifier_gives_each_variant_its_verdict(
    testbed: Testbed, tmp_path: Path
) -> None:
    """Local backend + classifier over every implementation and variant."""
    from rootcanary.backends.local import ProbeSettings, Target, run_campaign
    from rootcanary.classify import classify
    from rootcanary.demo import expected_for
    from rootcanary.plan import plan_tests
    from rootcanary.scenario.tests import TestsSpec

    assert testbed.anchor is not None
    ours = testbed.anchor.keytags[0]
    tests = plan_tests(TestsSpec(zone=ZONE, bogus=("sig",), keytags=(ours,)))
    run = run_campaign(
        tmp_path / "campaign",
        name="variants",
        targets=[Target(r.name, r.address) for r in testbed.resolvers],
        tests=tests,
        settings=ProbeSettings(timeout=3, retries=1),
        zone=ZONE,
    )
    latest = {
        bucket.vantage.probe: bucket
        for bucket in classify(run.observations, keytags=(ours,)).buckets
    }
    for resolver in testbed.resolvers:
        want = expected_for(resolver.implementation, resolver.variant)
        got = latest[resolver.name]
        assert got.validation == want.validation, resolver.name
        if want.trust_anchor is not None:
            states = {t.keytag: t.state for t in got.trust_anchors}
            assert states[ours] == want.trust_anchor, resolver.name
