"""The ``[server]``, ``[zone_defaults]`` and ``[[zone]]`` sections: what is served.

Example::

    [server]
    listen = ["127.0.0.1:53"]

    [zone_defaults]
    algorithm = 13

    [[zone]]
    apex = "."
    nameservers = [{ name = "a.root-servers." }]

    [[zone]]
    apex = "test."

    [[zone]]
    apex = "canary.test."
    test_names = true
    matrix = "all"

Each zone's parent is the nearest enclosing zone of the scenario; the server
puts the delegation (NS, glue, DS) into it. A zone without a parent in the
scenario is delegated by someone else: ``rootcanary zone ds`` prints its DS.
A name server without ``addresses`` is reached on the addresses the server
listens on (after ``--listen``), so glue always points at this server.

Keys are kept per zone under stable slot names (``[[zone.keys]]``); which keys
are published and which sign the DNSKEY set or the rest of the zone is data,
so that a rollover can add, publish, roll to, revoke and remove keys phase by
phase without code changes.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from rootcanary import names
from rootcanary.config import Table

# Algorithms rootcanary can sign with (dnspython + cryptography; RFC 8624 §3.1).
SIGNING_ALGORITHMS = (5, 7, 8, 10, 13, 14, 15, 16)
DS_DIGESTS = (1, 2, 4)
ROOT_SERVER = "a.root-servers."
DEFAULT_BIG_SIZE = 1425  # bytes: the root DNSKEY response at the 2019 revocation
_SLOT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


@dataclass(frozen=True)
class ServerSpec:
    """Where the authoritative server listens and keeps its state."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 53),)
    state_dir: Path | None = None
    query_log: Path | None = None
    #: HTTP responder addresses for proxy measurements; empty means none.
    http_listen: tuple[tuple[str, int], ...] = ()
    #: Worker processes sharing the sockets (SO_REUSEPORT).
    workers: int = 1
    #: Largest UDP response sent whatever the client offers (RFC 6891 §6.2.5;
    #: RFC 4035 §4.1 asks for at least 1220 and recommends 4000).
    max_udp_size: int = 4096
    #: Idle TCP connections are closed after this many seconds (RFC 7766 §6.2.3).
    tcp_idle_timeout: float = 10.0


@dataclass(frozen=True)
class NameServer:
    """A name server of a zone; no addresses means the server's own."""

    name: str
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeySpec:
    """One key slot of a zone and what the key in it does.

    ``sep`` keys get flags 257 (KSK), the others 256 (ZSK). A key signs the
    DNSKEY RRset if ``signs_dnskey``, every other RRset if ``signs_zone``;
    ``revoke`` publishes it with the REVOKE bit (RFC 5011 §2.1, flags 385).
    """

    slot: str
    sep: bool
    publish: bool = True
    signs_dnskey: bool = False
    signs_zone: bool = False
    revoke: bool = False
    #: None means the zone's algorithm.
    algorithm: int | None = None


DEFAULT_KEYS = (
    KeySpec("ksk", sep=True, signs_dnskey=True),
    KeySpec("zsk", sep=False, signs_zone=True),
)


@dataclass(frozen=True)
class Delegation:
    """A child zone served elsewhere: NS, glue and (optionally) DS in our zone."""

    name: str
    nameservers: tuple[NameServer, ...]
    ds: tuple[str, ...] = ()


@dataclass(frozen=True)
class ZoneSpec:
    """One zone to serve, with its signing parameters."""

    apex: str
    nameservers: tuple[NameServer, ...]
    algorithm: int = 13
    ttl: int = 3600
    dnskey_ttl: int = 3600
    #: SOA minimum: the TTL of negative answers and of NSEC/NSEC3 (RFC 9077).
    negative_ttl: int = 300
    #: RRSIG lifetime and how long before expiry signatures are refreshed.
    signature_validity: float = 14 * 86400
    signature_refresh: float = 4 * 86400
    #: How far in the past inception is set, for resolvers with skewed clocks.
    inception_offset: float = 3600
    nsec3: bool = False
    nsec3_iterations: int = 0
    nsec3_salt: str = ""
    ds_digests: tuple[int, ...] = (2,)
    rsa_bits: int = 2048
    keys: tuple[KeySpec, ...] = DEFAULT_KEYS
    delegations: tuple[Delegation, ...] = ()
    #: Extra records, master-file lines relative to the apex.
    records: tuple[str, ...] = ()
    #: Serve the canary test names (valid, bogus-*, sentinel, whoami, big) here.
    test_names: bool = False
    #: Where the test names' A and AAAA records point (the HTTP responder).
    answer_v4: str = "127.0.0.1"
    answer_v6: str = "::1"
    big_size: int = DEFAULT_BIG_SIZE
    whoami_ttl: int = 0
    #: Algorithm-matrix child zones to serve (labels like ``d2a13n1``); "all"
    #: expands to every combination the installed crypto library can sign.
    matrix: tuple[str, ...] | str = ()


def parse_server(table: Table | None, top: Table) -> ServerSpec:
    if table is None:
        return ServerSpec()
    spec = ServerSpec(
        listen=table.hostports("listen", ServerSpec.listen),
        state_dir=table.path("state_dir", None),
        query_log=table.path("query_log", None),
        http_listen=table.hostports("http_listen", (), port=80),
        workers=table.integer("workers", 1, minimum=1, maximum=64),
        max_udp_size=table.integer("max_udp_size", 4096, minimum=512, maximum=65535),
        tcp_idle_timeout=table.duration("tcp_idle_timeout", 10.0, minimum=0.1),
    )
    if not spec.listen:
        table.fail("listen", "needs at least one HOST:PORT")
    table.done()
    return spec


def parse_zones(
    tables: list[Table], defaults: Table | None, server: ServerSpec, top: Table
) -> tuple[ZoneSpec, ...]:
    base = _zone_settings(defaults, {}) if defaults is not None else {}
    if defaults is not None:
        defaults.done()
    zones: list[ZoneSpec] = []
    seen: set[str] = set()
    for table in tables:
        zone = _parse_zone(table, base)
        if zone.apex in seen:
            table.fail("apex", f"zone {zone.apex} is given twice")
        seen.add(zone.apex)
        zones.append(zone)
    return tuple(zones)


def _zone_settings(table: Table, base: dict[str, object]) -> dict[str, object]:
    """The settings [zone_defaults] and [[zone]] share."""
    out = dict(base)
    if table.has("algorithm"):
        out["algorithm"] = _algorithm(table, "algorithm")
    for key in ("ttl", "dnskey_ttl", "negative_ttl"):
        if table.has(key):
            out[key] = table.integer(key, minimum=0, maximum=2**31 - 1)
    for key in ("signature_validity", "signature_refresh", "inception_offset"):
        if table.has(key):
            out[key] = table.duration(key)
    if table.has("nsec"):
        out["nsec3"] = table.text("nsec", choices=("nsec", "nsec3")) == "nsec3"
    if table.has("nsec3_iterations"):
        # RFC 9276 §3.1: iterations MUST be 0 for new zones; allow more for tests.
        out["nsec3_iterations"] = table.integer(
            "nsec3_iterations", minimum=0, maximum=2500
        )
    if table.has("nsec3_salt"):
        salt = table.text("nsec3_salt")
        try:
            bytes.fromhex(salt)
        except ValueError:
            table.fail("nsec3_salt", f"expected hex digits, got {salt!r}")
        if len(salt) > 510:
            table.fail("nsec3_salt", "at most 255 octets (RFC 5155 §3.1.5)")
        out["nsec3_salt"] = salt
    if table.has("ds_digests"):
        digests = table.items("ds_digests", int)
        bad = [d for d in digests if d not in DS_DIGESTS]
        if bad or not digests:
            table.fail("ds_digests", f"digest types must be among {DS_DIGESTS}")
        out["ds_digests"] = digests
    if table.has("rsa_bits"):
        out["rsa_bits"] = table.integer("rsa_bits", minimum=1024, maximum=4096)
    validity = float(out.get("signature_validity", ZoneSpec.signature_validity))  # type: ignore[arg-type]
    refresh = float(out.get("signature_refresh", ZoneSpec.signature_refresh))  # type: ignore[arg-type]
    if not 0 < refresh < validity:
        key = (
            "signature_refresh"
            if table.has("signature_refresh")
            else "signature_validity"
        )
        table.fail(
            key,
            f"signature_refresh ({refresh:g}s) must be above 0 and below "
            f"signature_validity ({validity:g}s)",
        )
    return out


def _algorithm(table: Table, key: str) -> int:
    alg: int = table.integer(key)
    if alg not in SIGNING_ALGORITHMS:
        table.fail(key, f"rootcanary signs with {SIGNING_ALGORITHMS}, not {alg}")
    return alg


def _parse_zone(table: Table, base: dict[str, object]) -> ZoneSpec:
    apex = _name(table, "apex")
    settings = _zone_settings(table, base)
    nameservers = _nameservers(table, "nameservers")
    if not nameservers:
        # Default: one name server inside the zone, on the server's addresses.
        # The root's is authoritative data of the root zone itself: a name
        # below a delegated TLD (a.root-servers.test.) would be glue there,
        # and Knot Resolver, resolving it before trusting it, needs that TLD's
        # DS from the root, whose only address it is resolving: SERVFAIL.
        label = ROOT_SERVER if apex == "." else names.join("ns1", apex)
        nameservers = (NameServer(label),)
    zone = ZoneSpec(
        apex=apex,
        nameservers=nameservers,
        keys=_keys(table),
        delegations=_delegations(table, apex),
        records=_records(table, apex),
        test_names=table.flag("test_names", False),
        answer_v4=_address(table, "answer_v4", "127.0.0.1", 4),
        answer_v6=_address(table, "answer_v6", "::1", 6),
        big_size=table.integer(
            "big_size", DEFAULT_BIG_SIZE, minimum=512, maximum=65000
        ),
        whoami_ttl=table.integer("whoami_ttl", 0, minimum=0, maximum=86400),
        matrix=_matrix(table),
        **settings,  # type: ignore[arg-type]
    )
    table.done()
    if zone.matrix and not zone.test_names:
        table.fail("matrix", "the algorithm matrix needs test_names = true")
    return zone


def _name(table: Table, key: str) -> str:
    text = table.text(key)
    try:
        name = dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        table.fail(key, f"not a domain name: {text!r} ({exc})")
    return name.canonicalize().to_text()


def _nameservers(table: Table, key: str) -> tuple[NameServer, ...]:
    out = []
    for ns_table in table.tables(key):
        ns_name = _name(ns_table, "name")
        addresses = ns_table.items("addresses", str, ())
        for index, address in enumerate(addresses):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                ns_table.fail(f"addresses[{index}]", f"not an IP address: {address!r}")
        ns_table.done()
        out.append(NameServer(ns_name, tuple(addresses)))
    return tuple(out)


def _keys(table: Table) -> tuple[KeySpec, ...]:
    if not table.has("keys"):
        return DEFAULT_KEYS
    out: list[KeySpec] = []
    for key_table in table.tables("keys"):
        slot = key_table.text("slot")
        if not _SLOT.match(slot):
            key_table.fail("slot", f"expected a short lower-case name, got {slot!r}")
        if any(k.slot == slot for k in out):
            key_table.fail("slot", f"slot {slot!r} is given twice")
        kind = key_table.text("type", choices=("ksk", "zsk", "csk"))
        signs = key_table.items("signs", str, None)
        if signs is None:
            signs = {"ksk": ("dnskey",), "zsk": ("zone",), "csk": ("dnskey", "zone")}[
                kind
            ]
        for index, what in enumerate(signs):
            if what not in ("dnskey", "zone"):
                key_table.fail(f"signs[{index}]", f"expected dnskey or zone: {what!r}")
        out.append(
            KeySpec(
                slot=slot,
                sep=kind != "zsk",
                publish=key_table.flag("publish", True),
                signs_dnskey="dnskey" in signs,
                signs_zone="zone" in signs,
                revoke=key_table.flag("revoke", False),
                algorithm=(
                    _algorithm(key_table, "algorithm")
                    if key_table.has("algorithm")
                    else None
                ),
            )
        )
        key_table.done()
    if not any(k.signs_dnskey for k in out):
        table.fail("keys", 'no key signs the DNSKEY set (signs = ["dnskey"])')
    if not any(k.signs_zone for k in out):
        table.fail("keys", 'no key signs the zone (signs = ["zone"])')
    return tuple(out)


def _delegations(table: Table, apex: str) -> tuple[Delegation, ...]:
    out = []
    for sub in table.tables("delegations"):
        name = _name(sub, "name")
        if not _below(name, apex):
            sub.fail("name", f"{name} is not below the zone {apex}")
        nameservers = _nameservers(sub, "nameservers")
        if not nameservers:
            sub.fail("nameservers", "a delegation needs at least one name server")
        for ns in nameservers:
            inside = _below(ns.name, name) or ns.name == name
            if inside and not ns.addresses:
                sub.fail("nameservers", f"{ns.name} is below {name}: needs glue")
        ds = sub.items("ds", str, ())
        for index, text in enumerate(ds):
            try:
                dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, text)
            except (dns.exception.DNSException, ValueError) as exc:
                sub.fail(
                    f"ds[{index}]", f"not DS data ('tag alg digest-type hex'): {exc}"
                )
        sub.done()
        out.append(Delegation(name, nameservers, ds))
    return tuple(out)


def _records(table: Table, apex: str) -> tuple[str, ...]:
    lines = table.items("records", str, ())
    for index, line in enumerate(lines):
        try:
            parse_record(line, apex)
        except (dns.exception.DNSException, ValueError) as exc:
            table.fail(f"records[{index}]", f"not a record line ({exc}): {line!r}")
    return tuple(lines)


def parse_record(line: str, apex: str) -> tuple[str, int | None, str, str]:
    """``"www 300 IN A 192.0.2.1"`` as (absolute owner, ttl, type, rdata text)."""
    fields = line.split()
    if len(fields) < 3:
        raise ValueError("expected 'owner [ttl] [IN] TYPE rdata'")
    owner = dns.name.from_text(fields[0], dns.name.from_text(apex))
    rest = fields[1:]
    ttl = None
    if rest and rest[0].isdigit():
        ttl = int(rest.pop(0))
    if rest and rest[0].upper() == "IN":
        rest.pop(0)
    if len(rest) < 2:
        raise ValueError("missing type or data")
    rdtype = dns.rdatatype.from_text(rest[0])
    data = " ".join(rest[1:])
    dns.rdata.from_text(
        dns.rdataclass.IN, rdtype, data, origin=dns.name.from_text(apex)
    )
    if not (owner.is_subdomain(dns.name.from_text(apex))):
        raise ValueError(f"{owner} is outside {apex}")
    return owner.to_text(), ttl, dns.rdatatype.to_text(rdtype), data


def _matrix(table: Table) -> tuple[str, ...] | str:
    if not table.has("matrix"):
        return ()
    if table.raw("matrix") == "all":
        return "all"
    labels: tuple[str, ...] = table.items("matrix", str)
    for index, label in enumerate(labels):
        parsed = names.parse_matrix_label(label)
        if (
            not parsed
            or parsed[0] not in DS_DIGESTS
            or parsed[1] not in SIGNING_ALGORITHMS
        ):
            table.fail(
                f"matrix[{index}]",
                f"{label!r} is not d<digest>a<alg>n<1|3> with digest in "
                f"{DS_DIGESTS} and alg in {SIGNING_ALGORITHMS}",
            )
    return labels


def _address(table: Table, key: str, default: str, version: int) -> str:
    text = table.text(key, default)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        table.fail(key, f"not an IP address: {text!r}")
    if address.version != version:
        table.fail(key, f"expected an IPv{version} address, got {text!r}")
    return str(text)


def _below(name: str, apex: str) -> bool:
    return name != apex and (apex == "." or name.endswith("." + apex))


def matrix_labels(zone: ZoneSpec) -> tuple[str, ...]:
    """The matrix child-zone labels of a zone, with ``"all"`` expanded.

    "all" is every digest x algorithm x denial combination that this machine's
    cryptography library can sign, except RSASHA1 (5) with NSEC3: RFC 5155 §2
    reserves NSEC3 zones for the NSEC3-capable algorithm numbers (7 and up), so
    validators treat such a zone as unsigned or bogus rather than testing
    algorithm support.
    """
    if zone.matrix != "all":
        return tuple(zone.matrix)
    usable = signable_algorithms()
    return tuple(
        names.matrix_label(digest, alg, nsec)
        for alg in names.MATRIX_ALGORITHMS
        if alg in usable
        for digest in names.MATRIX_DIGESTS
        for nsec in (1, 3)
        if not (alg == 5 and nsec == 3)
    )


@functools.cache
def signable_algorithms() -> frozenset[int]:
    """DNSKEY algorithms the installed cryptography/OpenSSL can sign with.

    Some OpenSSL builds refuse SHA-1 signatures or lack Ed448, so this tries a
    signature per algorithm once (a 1024-bit RSA key keeps the probe fast).
    """
    from dns.dnssecalgs import get_algorithm_cls

    usable = set()
    rsa_key: Any = None
    for alg in SIGNING_ALGORITHMS:
        try:
            cls: Any = get_algorithm_cls(alg)
            if alg in (5, 7, 8, 10):
                if rsa_key is None:
                    rsa_key = cls.generate(1024)
                key = cls(key=rsa_key.key)
            else:
                key = cls.generate()
            key.sign(b"probe", verify=True)
        except Exception:  # any failure means "cannot sign"
            continue
        usable.add(alg)
    return frozenset(usable)
