"""The ``[server]`` section and the ``[[zone]]`` tables: what the server serves.

Example::

    [server]
    listen = ["127.0.0.1:53"]

    [zone_defaults]
    algorithm = 13

    [[zone]]
    apex = "."
    nameservers = [{ name = "a.root-servers.test.", addresses = ["127.0.0.1"] }]

    [[zone]]
    apex = "canary.test."
    test_names = true
    nameservers = [{ name = "ns1.canary.test.", addresses = ["127.0.0.1"] }]

Each zone's parent is the nearest enclosing zone of the scenario; the server
puts the delegation (NS, glue, DS) into it. A zone without a parent in the
scenario is delegated by someone else: ``rootcanary zone ds`` prints its DS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from rootcanary import names
from rootcanary.config import Table

# Algorithms rootcanary can sign with (dnspython + cryptography; RFC 8624 §3.1).
SIGNING_ALGORITHMS = (5, 7, 8, 10, 13, 14, 15, 16)
DS_DIGESTS = (1, 2, 4)
DEFAULT_BIG_SIZE = 1425  # bytes: the root DNSKEY response at the 2019 revocation


@dataclass(frozen=True)
class ServerSpec:
    """Where the authoritative server listens and keeps its state."""

    listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 53),)
    state_dir: Path | None = None
    query_log: Path | None = None
    #: HTTP responder addresses for proxy measurements; empty means none.
    http_listen: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class NameServer:
    name: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class ZoneSpec:
    """One zone to serve, with its signing parameters."""

    apex: str
    nameservers: tuple[NameServer, ...]
    algorithm: int = 13
    ttl: int = 3600
    dnskey_ttl: int = 3600
    #: RRSIG lifetime and how long before expiry signatures are refreshed.
    signature_validity: float = 14 * 86400
    signature_refresh: float = 4 * 86400
    #: How far in the past inception is set, for resolvers with skewed clocks.
    inception_offset: float = 3600
    nsec3: bool = False
    nsec3_iterations: int = 0
    nsec3_salt: str = ""
    ds_digests: tuple[int, ...] = (2,)
    #: Serve the canary test names (valid, bogus-*, sentinel, whoami, big) here.
    test_names: bool = False
    #: Where the test names' A and AAAA records point (the HTTP responder).
    answer_v4: str = "127.0.0.1"
    answer_v6: str = "::1"
    big_size: int = DEFAULT_BIG_SIZE
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
    )
    if not spec.listen:
        table.fail("listen", "needs at least one HOST:PORT")
    table.done()
    return spec


_ZONE_KEYS = (
    "algorithm",
    "ttl",
    "dnskey_ttl",
    "signature_validity",
    "signature_refresh",
    "inception_offset",
    "nsec",
    "nsec3_iterations",
    "nsec3_salt",
    "ds_digests",
)


def parse_zones(
    tables: list[Table], defaults: Table | None, server: ServerSpec, top: Table
) -> tuple[ZoneSpec, ...]:
    base = _zone_settings(defaults, {}) if defaults is not None else {}
    if defaults is not None:
        defaults.done()
    zones: list[ZoneSpec] = []
    seen: set[str] = set()
    for table in tables:
        zone = _parse_zone(table, base, server)
        if zone.apex in seen:
            table.fail("apex", f"zone {zone.apex} is given twice")
        seen.add(zone.apex)
        zones.append(zone)
    return tuple(zones)


def _zone_settings(table: Table, base: dict[str, object]) -> dict[str, object]:
    out = dict(base)
    if table.has("algorithm"):
        alg = table.integer("algorithm")
        if alg not in SIGNING_ALGORITHMS:
            table.fail(
                "algorithm", f"rootcanary signs with {SIGNING_ALGORITHMS}, not {alg}"
            )
        out["algorithm"] = alg
    for key in ("ttl", "dnskey_ttl"):
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
        out["nsec3_salt"] = salt
    if table.has("ds_digests"):
        digests = table.items("ds_digests", int)
        bad = [d for d in digests if d not in DS_DIGESTS]
        if bad or not digests:
            table.fail("ds_digests", f"digest types must be among {DS_DIGESTS}")
        out["ds_digests"] = digests
    return out


def _parse_zone(table: Table, base: dict[str, object], server: ServerSpec) -> ZoneSpec:
    apex_text = table.text("apex")
    try:
        apex = names.absolute(apex_text) if apex_text.strip() != "." else "."
    except ValueError as exc:
        table.fail("apex", str(exc))
    settings = _zone_settings(table, base)
    nameservers = []
    for ns_table in table.tables("nameservers"):
        ns_name = names.absolute(ns_table.text("name"))
        addresses = ns_table.items("addresses", str, ())
        for index, address in enumerate(addresses):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                ns_table.fail(f"addresses[{index}]", f"not an IP address: {address!r}")
        ns_table.done()
        nameservers.append(NameServer(ns_name, addresses))
    if not nameservers:
        # Default: one name server inside the zone, on the server's addresses.
        label = "a.root-servers.test." if apex == "." else names.join("ns1", apex)
        nameservers.append(NameServer(label, tuple(host for host, _ in server.listen)))
    for ns in nameservers:
        if _in_bailiwick(ns.name, apex) and not ns.addresses:
            table.fail("nameservers", f"{ns.name} is inside {apex} and needs addresses")
    matrix: tuple[str, ...] | str = ()
    if table.has("matrix"):
        raw = table.raw("matrix")
        if raw == "all":
            matrix = "all"
        else:
            labels = table.items("matrix", str)
            for index, label in enumerate(labels):
                parsed = names.parse_matrix_label(label)
                if (
                    not parsed
                    or parsed[0] not in DS_DIGESTS
                    or parsed[1] not in (SIGNING_ALGORITHMS)
                ):
                    table.fail(
                        f"matrix[{index}]",
                        f"{label!r} is not d<digest>a<alg>n<1|3> with digest in "
                        f"{DS_DIGESTS} and alg in {SIGNING_ALGORITHMS}",
                    )
            matrix = labels
    zone = ZoneSpec(
        apex=apex,
        nameservers=tuple(nameservers),
        test_names=table.flag("test_names", False),
        answer_v4=_address(table, "answer_v4", "127.0.0.1", 4),
        answer_v6=_address(table, "answer_v6", "::1", 6),
        big_size=table.integer("big_size", DEFAULT_BIG_SIZE, minimum=64, maximum=65000),
        matrix=matrix,
        **settings,  # type: ignore[arg-type]
    )
    table.done()
    return zone


def _address(table: Table, key: str, default: str, version: int) -> str:
    text = table.text(key, default)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        table.fail(key, f"not an IP address: {text!r}")
    if address.version != version:
        table.fail(key, f"expected an IPv{version} address, got {text!r}")
    return str(text)


def _in_bailiwick(name: str, apex: str) -> bool:
    return apex == "." or name == apex or name.endswith("." + apex)
