"""Exported master files: ldns-verify-zone, NSD and BIND checks, NSD serving them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from authserver_support import CANARY, Addresses, daemon, query, shared_state, wait_for

from authserver.build import ZoneBuilder
from authserver.engine import Endpoint, Engine
from authserver.export import export_zones
from rootcanary import names
from rootcanary.scenario import load_scenario

pytestmark = pytest.mark.integration

# What ldns-verify-zone must say about each bogus name, and nothing else.
EXPECTED = {
    "bogus-sig": "Bogus DNSSEC signature",
    "bogus-expired": "DNSSEC signature has expired",
    "bogus-future": "DNSSEC signature not incepted yet",
    "bogus-nosig": "no signatures",
    "bogus-wrongkey": "No keys with the keytag and algorithm",
}
ERROR = re.compile(r"^Error: (?P<what>.+?) for (?P<owner>\S+)\s+(?P<type>\S+)$")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("zones")
    return export_zones(load_scenario(CANARY), out, shared_state(tmp_path_factory))


def test_every_zone_is_exported(exported: list[Path]) -> None:
    files = {p.name for p in exported}
    assert {
        "root.zone",
        "test.zone",
        "canary.test.zone",
        "bogus-ds.canary.test.zone",
    } <= files
    assert "d2a13n3.canary.test.zone" in files
    assert "whoami" not in (Path(exported[0]).parent / "canary.test.zone").read_text()


@pytest.mark.skipif(
    shutil.which("ldns-verify-zone") is None, reason="ldnsutils missing"
)
def test_ldns_verify_zone_finds_only_the_intended_failures(
    exported: list[Path],
) -> None:
    for path in exported:
        result = subprocess.run(
            ["ldns-verify-zone", str(path)], capture_output=True, text=True
        )
        output = (result.stdout + result.stderr).strip().splitlines()
        errors = [line for line in output if line.startswith("Error")]
        if not errors:
            assert (
                result.returncode == 0 and output[-1] == "Zone is verified and complete"
            ), path
            continue
        for line in errors:
            match = ERROR.match(line)
            assert match, f"{path.name}: unexpected {line!r}"
            owner = dns.name.from_text(match["owner"])
            label = owner.labels[1 if owner.labels[0] == b"*" else 0].decode()
            assert label in EXPECTED, f"{path.name}: {line}"
            assert match["what"].startswith(EXPECTED[label]), line
            assert match["type"] in ("A", "AAAA", "TXT"), line
        if path.name == "canary.test.zone":
            failing = {ERROR.match(line)["owner"] for line in errors}  # type: ignore[index]
            assert failing == {
                f"{p}{k}.canary.test." for k in EXPECTED for p in ("", "*.")
            }


@pytest.mark.skipif(shutil.which("nsd-checkzone") is None, reason="nsd missing")
def test_nsd_and_bind_load_every_zone(exported: list[Path]) -> None:
    for path in exported:
        apex = "." if path.name == "root.zone" else path.name[: -len(".zone")] + "."
        nsd = subprocess.run(
            ["nsd-checkzone", apex, str(path)], capture_output=True, text=True
        )
        assert nsd.returncode == 0, nsd.stdout + nsd.stderr
        bind = subprocess.run(
            ["named-checkzone", "-i", "local", apex, str(path)],
            capture_output=True,
            text=True,
        )
        assert bind.returncode == 0 and bind.stdout.strip().endswith("OK"), bind.stdout


@pytest.mark.skipif(shutil.which("knotc") is None, reason="knot missing")
def test_knot_loads_every_zone(exported: list[Path], tmp_path: Path) -> None:
    """knotc zone-check loads each zone with semantic checks (Knot has no
    stand-alone checker in Debian 12); only the bogus names may be flagged."""
    lines = [
        "server:",
        f"    rundir: {tmp_path}",
        "database:",
        f"    storage: {tmp_path}",
        "template:",
        "  - id: default",
        "    semantic-checks: on",
        "zone:",
    ]
    for path in exported:
        apex = "." if path.name == "root.zone" else path.name[: -len(".zone")] + "."
        lines += [f'  - domain: "{apex}"', f'    file: "{path}"']
    conf = tmp_path / "knot.conf"
    conf.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["knotc", "-c", str(conf), "zone-check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    flagged = [line for line in (result.stdout + result.stderr).splitlines() if line]
    assert flagged  # the bogus-sig names are noticed ...
    for line in flagged:  # ... and nothing else is
        match = re.search(r"node (\S+), no valid signature for a record", line)
        assert match, line
        owner = dns.name.from_text(match.group(1))
        label = owner.labels[1 if owner.labels[0] == b"*" else 0].decode()
        assert label in EXPECTED, line


@pytest.mark.skipif(shutil.which("nsd") is None, reason="nsd missing")
def test_nsd_serving_the_export_answers_like_us(
    exported: list[Path], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    address = Addresses(net="127.0.23").nsd
    conf = tmp_path / "nsd.conf"
    lines = [
        "server:",
        f"  ip-address: {address}",
        "  port: 53",
        '  username: ""',
        '  chroot: ""',
        '  database: ""',
        f'  zonelistfile: "{tmp_path}/zone.list"',
        f'  xfrdfile: "{tmp_path}/xfrd.state"',
        f'  xfrdir: "{tmp_path}"',
        f'  pidfile: "{tmp_path}/nsd.pid"',
        "  server-count: 1",
        "  rrl-ratelimit: 0",
        "  minimal-responses: yes",
        "remote-control:",
        "  control-enable: no",
    ]
    for path in exported:
        apex = "." if path.name == "root.zone" else path.name[: -len(".zone")] + "."
        lines += ["zone:", f'  name: "{apex}"', f'  zonefile: "{path}"']
    conf.write_text("\n".join(lines) + "\n")
    built = ZoneBuilder(load_scenario(CANARY), shared_state(tmp_path_factory)).build(
        dynamic=False
    )
    engine = Engine(built.served)
    endpoint = Endpoint("udp", address, 53)
    z = "canary.test."
    checks = [
        (names.valid_name(z), "A"),
        (names.valid_name(z, "abc"), "AAAA"),
        (names.bogus_name(z, "sig"), "A"),
        (names.bogus_name(z, "nosig", "q"), "TXT"),
        (names.sentinel_name(z, "is-ta", 20326, "n1"), "A"),
        ("nx." + z, "A"),
        (z, "DNSKEY"),
        ("canary.test.", "DS"),
        ("valid.d2a13n3." + z, "A"),
        ("nx.d4a15n3." + z, "A"),
        (".", "DNSKEY"),
    ]
    with daemon(["nsd", "-d", "-c", str(conf)], tmp_path / "nsd.log"):
        wait_for(lambda: _answers(address), 10, "NSD")
        for name, rdtype in checks:
            theirs = query(address, name, rdtype)
            msg = dns.message.make_query(name, rdtype, want_dnssec=True, payload=4096)
            ours = dns.message.from_wire(
                engine.handle(msg.to_wire(), "127.0.0.1", 1, 4, endpoint)
            )  # type: ignore[arg-type]
            assert theirs.rcode() == ours.rcode(), name
            for section in ("answer", "authority"):
                # RRsets are sets: compare their records in a fixed order.
                mine = sorted(_records(getattr(ours, section)))
                nsd = sorted(_records(getattr(theirs, section)))
                assert mine == nsd, (name, rdtype, section)


def _records(section: list[dns.rrset.RRset]) -> list[str]:
    return [
        f"{rrset.name} {rrset.ttl} {rrset.rdtype} {rrset.covers} {rdata.to_text()}"
        for rrset in section
        for rdata in rrset
    ]


def _answers(address: str) -> bool:
    try:
        return bool(query(address, "canary.test.", "SOA", timeout=0.3).answer)
    except Exception:
        return False
