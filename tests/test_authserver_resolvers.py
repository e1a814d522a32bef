"""Real resolvers from Debian resolve and validate through the server.

The server serves the private root, ``test.`` and ``canary.test.`` on one
address; each resolver gets root hints pointing there and the root KSK from
``root_trust_anchor`` as its trust anchor (configs from notes/testbed.md).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from authserver_support import (
    CANARY,
    NET,
    Addresses,
    Server,
    daemon,
    running_server,
    shared_state,
    wait_for,
)

from authserver.anchor import TrustAnchor, root_hints, root_trust_anchor
from authserver.build import ZoneBuilder
from rootcanary import names
from rootcanary.scenario import load_scenario

pytestmark = pytest.mark.integration

A = Addresses(NET)
Z = "canary.test."
E = dns.edns.EDECode
# Unbound 1.17 names the reason of each bogus kind (RFC 8914 §4).
UNBOUND_EDE = {
    "sig": E.DNSSEC_BOGUS,
    "expired": E.SIGNATURE_EXPIRED,
    "future": E.SIGNATURE_NOT_YET_VALID,
    "nosig": E.RRSIGS_MISSING,
    "wrongkey": E.DNSKEY_MISSING,
    "ds": E.DNSKEY_MISSING,
}


@pytest.fixture(scope="module")
def hierarchy(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, TrustAnchor, Path]]:
    tmp = tmp_path_factory.mktemp("resolvers")
    state = shared_state(tmp_path_factory)
    log = tmp / "query.log"
    with running_server(
        tmp, CANARY, A.server, "--state-dir", str(state), "--query-log", str(log)
    ) as server:
        anchor = root_trust_anchor(load_scenario(CANARY), state)
        hints = root_hints(load_scenario(CANARY), ((A.server, 53),))
        assert (
            hints == ". 3600000 IN NS a.root-servers.\n"
            f"a.root-servers. 3600000 IN A {A.server}\n"
        )
        (tmp / "root.hints").write_text(hints)
        yield server, anchor, tmp


def ask(
    resolver: str, name: str, rdtype: str = "A", cd: bool = False
) -> dns.message.Message:
    msg = dns.message.make_query(name, rdtype, want_dnssec=True, payload=1232)
    if cd:
        msg.flags |= dns.flags.CD
    return dns.query.udp(msg, resolver, timeout=8)


def rcode(resolver: str, name: str, rdtype: str = "A") -> tuple[str, bool]:
    reply = ask(resolver, name, rdtype)
    return dns.rcode.to_text(reply.rcode()), bool(reply.flags & dns.flags.AD)


def _up(resolver: str) -> bool:
    with contextlib.suppress(Exception):
        dns.query.udp(dns.message.make_query(".", "SOA"), resolver, timeout=0.5)
        return True
    return False


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (scripts/setup.sh installs it)")


@contextlib.contextmanager
def unbound(tmp: Path, anchor: TrustAnchor) -> Iterator[str]:
    _need("unbound")
    d = tmp / "unbound"
    d.mkdir(exist_ok=True)
    (d / "root.key").write_text("\n".join(anchor.dnskey_lines) + "\n")
    (d / "unbound.conf").write_text(
        f"""server:
  interface: {A.unbound}
  port: 53
  outgoing-interface: {A.unbound}
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  num-threads: 1
  module-config: "validator iterator"
  root-hints: "{tmp}/root.hints"
  trust-anchor-file: "{d}/root.key"
  trust-anchor-signaling: yes
  root-key-sentinel: yes
  ede: yes
  qname-minimisation: yes
  local-zone: "test." nodefault
remote-control:
  control-enable: no
"""
    )
    with daemon(["unbound", "-d", "-c", str(d / "unbound.conf")], d / "unbound.log"):
        wait_for(lambda: _up(A.unbound), 10, "unbound")
        yield A.unbound


def test_unbound_validates_every_test_name(
    hierarchy: tuple[Server, TrustAnchor, Path],
) -> None:
    _server, anchor, tmp = hierarchy
    tag = anchor.key_tags[0]
    with unbound(tmp, anchor) as resolver:
        assert rcode(resolver, names.valid_name(Z)) == ("NOERROR", True)
        assert rcode(resolver, names.valid_name(Z, "u1"), "AAAA") == ("NOERROR", True)
        assert rcode(resolver, "nx-name." + Z) == ("NXDOMAIN", True)
        for kind in names.BOGUS_KINDS:
            reply = ask(resolver, names.bogus_name(Z, kind, f"b{kind}"))
            assert dns.rcode.to_text(reply.rcode()) == "SERVFAIL", kind
            ede = [o.code for o in reply.options if isinstance(o, dns.edns.EDEOption)]
            assert ede == [UNBOUND_EDE[kind]], (kind, ede)
            # With CD the resolver hands over the data it could not validate.
            assert ask(
                resolver, names.bogus_name(Z, kind, f"c{kind}"), cd=True
            ).answer, kind
        # RFC 8509 §2.2 for our key tag and for one Unbound does not hold.
        sentinel = {
            ("is-ta", tag): ("NOERROR", True),
            ("not-ta", tag): ("SERVFAIL", False),
            ("is-ta", 20326): ("SERVFAIL", False),
            ("not-ta", 20326): ("NOERROR", True),
        }
        for (kind, keytag), expected in sentinel.items():
            name = names.sentinel_name(Z, kind, keytag, f"s{kind}{keytag}")
            assert rcode(resolver, name) == expected, name
        who = ask(resolver, names.whoami_name(Z, "w1"))
        assert who.flags & dns.flags.AD
        assert [r.to_text() for r in who.answer[0]] == [A.unbound]
        txt = ask(resolver, names.whoami_name(Z, "w2"), "TXT")
        assert txt.answer[0][0].to_text() == f'"{A.unbound}"'
        assert rcode(resolver, names.whoami_name(Z, "w3"), "AAAA") == ("NOERROR", True)
        big = ask(resolver, names.big_name(Z, "g1"), "TXT")  # TC then TCP to us
        assert big.flags & dns.flags.AD

    def from_unbound() -> list[dict[str, object]]:
        lines = [
            json.loads(line) for line in (tmp / "query.log").read_text().splitlines()
        ]
        return [line for line in lines if line["src"] == A.unbound]

    # The log is written at least once a second; wait for the TCP retry.
    wait_for(
        lambda: any(line["transport"] == "tcp" for line in from_unbound()), 5, "tcp"
    )
    # RFC 8145: Unbound signals the anchor it holds (as an A query when
    # minimising, notes §7); the server decodes it.
    assert any(line["ta"] == [tag] for line in from_unbound())


def test_unbound_validates_the_algorithm_matrix(
    hierarchy: tuple[Server, TrustAnchor, Path],
) -> None:
    _server, anchor, tmp = hierarchy
    zones = [
        z.text
        for z in ZoneBuilder(load_scenario(CANARY), shared_state_path(tmp))
        .build()
        .served.zones
    ]
    matrix = [
        z.split(".")[0] for z in zones if names.parse_matrix_label(z.split(".")[0])
    ]
    assert len(matrix) == 45
    with unbound(tmp, anchor) as resolver:
        for label in matrix:
            valid = names.matrix_name(Z, label, "valid", "m")
            assert rcode(resolver, valid) == ("NOERROR", True), label
            assert rcode(resolver, "nx." + label + "." + Z) == ("NXDOMAIN", True), label
            assert (
                rcode(resolver, names.matrix_name(Z, label, "bogus-sig"))[0]
                == "SERVFAIL"
            ), label


def shared_state_path(tmp: Path) -> Path:
    # The module fixture's key directory (same session helper).
    from authserver_support import _SHARED

    state = _SHARED["state"]
    assert isinstance(state, Path)
    return state


@contextlib.contextmanager
def lo_alias(address: str) -> Iterator[None]:
    """BIND binds only addresses on an interface (notes §2)."""
    present = (
        address
        in subprocess.run(
            ["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True
        ).stdout
    )
    if not present:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    try:
        yield
    finally:
        if not present:
            subprocess.run(
                ["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False
            )


@contextlib.contextmanager
def bind(tmp: Path, anchor: TrustAnchor) -> Iterator[str]:
    _need("named")
    d = tmp / "bind"
    d.mkdir(exist_ok=True)
    key = anchor.keys[0]
    public = key.rdata.rsplit(" ", 1)[1]
    (d / "named.conf").write_text(
        f"""options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  listen-on port 53 {{ {A.bind}; }};
  listen-on-v6 {{ none; }};
  query-source address {A.bind};
  recursion yes;
  allow-query {{ 127.0.0.0/8; }};
  allow-recursion {{ 127.0.0.0/8; }};
  dnssec-validation yes;
  max-cache-size 32m;
}};
controls {{ }};
trust-anchors {{ . static-key {key.rdata.rsplit(" ", 1)[0]} "{public}"; }};
zone "." {{ type hint; file "{tmp}/root.hints"; }};
"""
    )
    with (
        lo_alias(A.bind),
        daemon(
            ["named", "-g", "-n", "1", "-c", str(d / "named.conf")], d / "named.log"
        ),
    ):
        wait_for(lambda: _up(A.bind), 15, "named")
        yield A.bind


@contextlib.contextmanager
def kresd(tmp: Path, anchor: TrustAnchor) -> Iterator[str]:
    _need("kresd")
    d = tmp / "kresd"
    d.mkdir(exist_ok=True)
    (d / "root.keys").write_text("\n".join(anchor.ds_lines) + "\n")
    (d / "config.lua").write_text(
        f"""log_target('stderr')
net.ipv6 = false
net.listen('{A.kresd}', 53, {{ kind = 'dns' }})
net.outgoing_v4('{A.kresd}')
cache.open(10 * MB, 'lmdb://{d}/cache')
policy.add(policy.all(policy.FLAGS({{'ALLOW_LOCAL'}})))
policy.add(policy.suffix(policy.PASS, policy.todnames({{'test.'}})))
modules.load('hints > iterate')
hints.root_file('{tmp}/root.hints')
trust_anchors.remove('.')
trust_anchors.add_file('{d}/root.keys', true)
"""
    )
    with daemon(["kresd", "-n", "-c", str(d / "config.lua"), str(d)], d / "kresd.log"):
        wait_for(lambda: _up(A.kresd), 15, "kresd")
        yield A.kresd


@contextlib.contextmanager
def pdns_recursor(tmp: Path, anchor: TrustAnchor) -> Iterator[str]:
    _need("pdns_recursor")
    d = tmp / "pdnsrec"
    d.mkdir(exist_ok=True)
    ds = anchor.keys[0].ds[0].split(" DS ", 1)[1]
    (d / "ta.lua").write_text(f'clearTA()\naddTA(".", "{ds}")\n')
    (d / "recursor.conf").write_text(
        f"""local-address={A.pdns}
local-port=53
query-local-address={A.pdns}
allow-from=127.0.0.0/8
dont-query=
hint-file={tmp}/root.hints
dnssec=validate
lua-config-file={d}/ta.lua
socket-dir={d}
daemon=no
disable-syslog=yes
threads=1
security-poll-suffix=
"""
    )
    with daemon(["pdns_recursor", f"--config-dir={d}"], d / "pdns.log"):
        wait_for(lambda: _up(A.pdns), 15, "pdns_recursor")
        yield A.pdns


@pytest.mark.parametrize(
    ("start", "sentinel"),
    [(bind, True), (kresd, True), (pdns_recursor, False)],
    ids=["bind", "kresd", "pdns-recursor"],
)
def test_other_resolvers_validate_through_the_server(
    hierarchy: tuple[Server, TrustAnchor, Path], start: object, sentinel: bool
) -> None:
    _server, anchor, tmp = hierarchy
    with start(tmp, anchor) as resolver:  # type: ignore[operator]
        assert rcode(resolver, names.valid_name(Z, "o1")) == ("NOERROR", True)
        assert rcode(resolver, "nx-o." + Z) == ("NXDOMAIN", True)
        assert rcode(resolver, names.bogus_name(Z, "sig", "o2"))[0] == "SERVFAIL"
        assert rcode(resolver, names.bogus_name(Z, "ds", "o3"))[0] == "SERVFAIL"
        assert rcode(resolver, names.matrix_name(Z, "d2a13n3", "valid", "o4")) == (
            "NOERROR",
            True,
        )
        who = ask(resolver, names.whoami_name(Z, "o5"))
        assert who.flags & dns.flags.AD
        assert [r.to_text() for r in who.answer[0]] == [resolver]
        tag = anchor.key_tags[0]
        not_ta = rcode(resolver, names.sentinel_name(Z, "not-ta", tag, "o6"))[0]
        # PowerDNS Recursor 4.8 has no RFC 8509 (notes §6).
        assert not_ta == ("SERVFAIL" if sentinel else "NOERROR")
