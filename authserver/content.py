"""What each served zone holds, before signing: the hierarchy and the test names.

:func:`plan_zones` expands a scenario's zones with the child zones the test
names imply (the algorithm matrix ``d<digest>a<alg>n<1|3>`` and the
``bogus-ds`` child); :func:`build_contents` fills every zone with its apex
records, test names, delegations (NS, DS, glue) and name-server addresses.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import dns.dnssec
import dns.dnssectypes
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rrset

from authserver.keys import ZoneKey
from rootcanary import names
from rootcanary.errors import ServerError
from rootcanary.scenario.zones import (
    KeySpec,
    NameServer,
    ZoneSpec,
    matrix_labels,
    parse_record,
)

IN = dns.rdataclass.IN
A, NS, AAAA, TXT, SOA, DS = (
    dns.rdatatype.A,
    dns.rdatatype.NS,
    dns.rdatatype.AAAA,
    dns.rdatatype.TXT,
    dns.rdatatype.SOA,
    dns.rdatatype.DS,
)
DNSKEY, NSEC3PARAM = dns.rdatatype.DNSKEY, dns.rdatatype.NSEC3PARAM

#: Signature modes of the bogus names (names.BOGUS_KINDS minus "ds", which is
#: a whole child zone).
SIG_MODES = ("valid", "sig", "expired", "future", "nosig", "wrongkey")
CSK = (KeySpec("csk", sep=True, signs_dnskey=True, signs_zone=True),)
WRONGKEY_SLOT = "wrongkey"
BOGUS_DS_LABEL = "bogus-ds"


@dataclass(frozen=True)
class PlannedZone:
    """A zone to serve: from the scenario (``kind="zone"``) or implied by it."""

    spec: ZoneSpec
    kind: str  # "zone", "matrix" or "bogus-ds"
    parent: str | None  # apex of the closest enclosing served zone


@dataclass
class ZoneContent:
    """The unsigned records of one zone and how each owner is to be signed."""

    planned: PlannedZone
    origin: dns.name.Name
    keys: list[tuple[KeySpec, ZoneKey]]
    wrongkey: ZoneKey | None
    serial: int
    rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = field(
        default_factory=dict
    )
    #: Owner -> one of SIG_MODES; absent means "valid".
    modes: dict[dns.name.Name, str] = field(default_factory=dict)
    cuts: set[dns.name.Name] = field(default_factory=set)
    #: whoami owners: answered per query (absent from exports).
    dynamic: set[dns.name.Name] = field(default_factory=set)
    glue: dict[dns.name.Name, list[dns.rrset.RRset]] = field(default_factory=dict)
    #: Owner of the sized TXT answer ("big"), adjusted after signing.
    big: list[dns.name.Name] = field(default_factory=list)

    @property
    def spec(self) -> ZoneSpec:
        return self.planned.spec

    def add(self, owner: dns.name.Name, ttl: int, rdtype: int, *texts: str) -> None:
        rdatas = [
            dns.rdata.from_text(
                IN,
                dns.rdatatype.RdataType.make(rdtype),
                text,
                origin=self.origin,
                relativize=False,
            )
            for text in texts
        ]
        self.add_rdatas(owner, ttl, rdatas)

    def add_rdatas(
        self, owner: dns.name.Name, ttl: int, rdatas: Iterable[dns.rdata.Rdata]
    ) -> None:
        rdatas = list(rdatas)
        key = (owner, rdatas[0].rdtype)
        existing = self.rrsets.get(key)
        if existing is None:
            self.rrsets[key] = dns.rrset.from_rdata_list(owner, ttl, rdatas)
        else:
            for rdata in rdatas:
                existing.add(rdata)

    def signing_keys(self, dnskey_set: bool) -> list[tuple[ZoneKey, bool]]:
        """(key, revoked) pairs that sign the DNSKEY set or everything else."""
        return [
            (key, spec.revoke)
            for spec, key in self.keys
            if (spec.signs_dnskey if dnskey_set else spec.signs_zone)
        ]


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def plan_zones(zones: tuple[ZoneSpec, ...]) -> tuple[PlannedZone, ...]:
    """The scenario's zones plus their implied children, parents first."""
    specs: list[tuple[ZoneSpec, str]] = [(z, "zone") for z in zones]
    given = {z.apex for z in zones}
    for zone in zones:
        if not zone.test_names:
            continue
        child_base = dataclasses.replace(
            zone,
            keys=CSK,
            test_names=False,
            matrix=(),
            delegations=(),
            records=(),
        )
        implied = [(names.join(BOGUS_DS_LABEL, zone.apex), child_base, "bogus-ds")]
        for label in matrix_labels(zone):
            digest, alg, nsec = names.parse_matrix_label(label)  # type: ignore[misc]
            matrix_spec = dataclasses.replace(
                child_base, algorithm=alg, ds_digests=(digest,), nsec3=nsec == 3
            )
            implied.append((names.join(label, zone.apex), matrix_spec, "matrix"))
        for apex, spec, kind in implied:
            if apex in given:
                raise ServerError(
                    f"zone {apex} is given in the scenario but is also implied by "
                    f"the test names of {zone.apex}; remove it from the scenario"
                )
            specs.append((dataclasses.replace(spec, apex=apex), kind))
    specs.sort(key=lambda item: len(_name(item[0].apex)))
    planned: list[PlannedZone] = []
    for spec, kind in specs:
        origin = _name(spec.apex)
        parent = None
        for other in reversed(planned):  # deepest first: sorted by length
            if origin != _name(other.spec.apex) and origin.is_subdomain(
                _name(other.spec.apex)
            ):
                parent = other.spec.apex
                break
        planned.append(PlannedZone(spec, kind, parent))
    return tuple(planned)


def listen_addresses(listen: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """The addresses glue can point at: the listen hosts, unspecified ones dropped."""
    out: list[str] = []
    for host, _port in listen:
        if not ipaddress.ip_address(host).is_unspecified and host not in out:
            out.append(host)
    return tuple(out)


def ns_addresses(ns: NameServer, default: tuple[str, ...]) -> tuple[str, ...]:
    if ns.addresses:
        return ns.addresses
    if not default:
        raise ServerError(
            f"name server {ns.name} has no addresses and the server listens only "
            f"on wildcard addresses; give the name server addresses in the scenario"
        )
    return default


def ds_rdatas(
    child: dns.name.Name, keys: list[tuple[KeySpec, ZoneKey]], digests: Iterable[int]
) -> list[dns.rdtypes.ANY.DS.DS]:
    """DS of a child's published, unrevoked SEP keys (RFC 4034 §5.1.4)."""
    out = []
    for spec, key in keys:
        if spec.publish and key.sep and not spec.revoke:
            for digest in digests:
                out.append(
                    dns.dnssec.make_ds(
                        child,
                        key.dnskey,
                        dns.dnssectypes.DSDigest.make(digest),
                        # SHA-1 DS (type 1) is forbidden for new delegations
                        # (RFC 9905) but is part of the test matrix.
                        policy=dns.dnssec.allow_all_policy,
                    )
                )
    return out


def _corrupt_ds(ds: dns.rdtypes.ANY.DS.DS) -> dns.rdtypes.ANY.DS.DS:
    """Same key tag and algorithm, wrong digest: the DS matches no DNSKEY."""
    digest = bytearray(ds.digest)
    digest[-1] ^= 0xFF
    return cast(dns.rdtypes.ANY.DS.DS, ds.replace(digest=bytes(digest)))


def build_contents(
    planned: tuple[PlannedZone, ...],
    keys: dict[str, list[tuple[KeySpec, ZoneKey]]],
    wrongkeys: dict[str, ZoneKey],
    listen: tuple[str, ...],
    serial: int,
    dynamic: bool = True,
) -> list[ZoneContent]:
    """Unsigned content of every planned zone (``dynamic=False`` for exports)."""
    contents = {
        p.spec.apex: ZoneContent(
            p, _name(p.spec.apex), keys[p.spec.apex], wrongkeys.get(p.spec.apex), serial
        )
        for p in planned
    }
    addresses: dict[dns.name.Name, set[str]] = {}
    for content in contents.values():
        _apex(content)
        for ns in content.spec.nameservers:
            addresses.setdefault(_name(ns.name), set()).update(ns_addresses(ns, listen))
        if content.spec.test_names:
            _test_names(content, dynamic)
        for line in content.spec.records:
            owner, ttl, rdtype, data = parse_record(line, content.spec.apex)
            content.add(
                _name(owner),
                content.spec.ttl if ttl is None else ttl,
                dns.rdatatype.from_text(rdtype),
                data,
            )
    for p in planned:
        if p.parent is not None:
            parent, child = contents[p.parent], contents[p.spec.apex]
            ds = ds_rdatas(child.origin, child.keys, child.spec.ds_digests)
            if p.kind == "bogus-ds":
                ds = [_corrupt_ds(d) for d in ds]
            _delegate(parent, child.origin, child.spec.nameservers, ds)
    for content in contents.values():
        for delegation in content.spec.delegations:
            ds_list = [
                cast(dns.rdtypes.ANY.DS.DS, dns.rdata.from_text(IN, DS, text))
                for text in delegation.ds
            ]
            _delegate(content, _name(delegation.name), delegation.nameservers, ds_list)
            for ns in delegation.nameservers:
                if ns.addresses:
                    addresses.setdefault(_name(ns.name), set()).update(ns.addresses)
    _place_addresses(list(contents.values()), addresses)
    return list(contents.values())


def _apex(content: ZoneContent) -> None:
    spec, origin = content.spec, content.origin
    ns_names = [ns.name for ns in spec.nameservers]
    rname = "hostmaster." + ("root-servers." if origin == dns.name.root else spec.apex)
    # RFC 1035 §3.3.13 fields; minimum is the negative TTL (RFC 2308 §4).
    content.add(
        origin,
        spec.ttl,
        SOA,
        f"{ns_names[0]} {rname} {content.serial} 3600 600 1209600 {spec.negative_ttl}",
    )
    content.add(origin, spec.ttl, NS, *ns_names)
    published = [
        key.published(kspec.revoke) for kspec, key in content.keys if kspec.publish
    ]
    content.add_rdatas(origin, spec.dnskey_ttl, published)
    if spec.nsec3:
        # RFC 5155 §4; RFC 9276 §3.1: zero extra iterations, empty salt.
        content.add(
            origin,
            0,
            NSEC3PARAM,
            f"1 0 {spec.nsec3_iterations} {spec.nsec3_salt or '-'}",
        )
    if content.planned.kind in ("bogus-ds",):
        _leaf_records(content, origin, "bogus-ds", "valid")
        _leaf_records(content, _name("*." + spec.apex), "bogus-ds", "valid")
    if content.planned.kind == "matrix":
        for leaf, mode in (("valid", "valid"), ("bogus-sig", "sig")):
            owner = _name(f"{leaf}.{spec.apex}")
            _leaf_records(content, owner, f"{leaf} {origin.labels[0].decode()}", mode)
            _leaf_records(content, _name(f"*.{leaf}.{spec.apex}"), leaf, mode)


def _leaf_records(
    content: ZoneContent, owner: dns.name.Name, role: str, mode: str
) -> None:
    spec = content.spec
    content.add(owner, spec.ttl, A, spec.answer_v4)
    content.add(owner, spec.ttl, AAAA, spec.answer_v6)
    content.add(owner, spec.ttl, TXT, f'"rootcanary {role}"')
    if mode != "valid":
        content.modes[owner] = mode


def _test_names(content: ZoneContent, dynamic: bool) -> None:
    apex = content.spec.apex
    _leaf_records(content, _name(names.valid_name(apex)), "valid", "valid")
    _leaf_records(content, _name("*." + names.valid_name(apex)), "valid", "valid")
    for kind in names.BOGUS_KINDS:
        if kind == "ds":
            continue  # a child zone, see plan_zones
        owner = names.bogus_name(apex, kind)
        role = f"bogus-{kind}: {names.BOGUS_DESCRIPTIONS[kind]}"
        _leaf_records(content, _name(owner), role, kind)
        _leaf_records(content, _name("*." + owner), role, kind)
    sentinel = names.join("*", names.SENTINEL_ZONE_LABEL, apex)
    _leaf_records(content, _name(sentinel), "sentinel", "valid")
    if dynamic:
        whoami = _name(names.join(names.WHOAMI_LABEL, apex))
        content.dynamic.update((whoami, _name("*." + whoami.to_text())))
    big = _name(names.big_name(apex))
    for sized in (big, _name("*." + big.to_text())):
        content.add(sized, content.spec.ttl, TXT, '"x"')
        content.big.append(sized)


def big_txt(rdata_length: int) -> str:
    """TXT data whose RDATA is exactly ``rdata_length`` octets (RFC 1035 §3.3.14)."""
    strings = []
    remaining = rdata_length
    while remaining > 256:
        strings.append("x" * 255)
        remaining -= 256
    strings.append("x" * (remaining - 1))
    return " ".join(f'"{s}"' for s in strings)


def _delegate(
    parent: ZoneContent,
    child: dns.name.Name,
    nameservers: tuple[NameServer, ...],
    ds: list[dns.rdtypes.ANY.DS.DS],
) -> None:
    parent.add(child, parent.spec.ttl, NS, *[ns.name for ns in nameservers])
    if ds:
        parent.add_rdatas(child, parent.spec.ttl, ds)
    parent.cuts.add(child)


def _place_addresses(
    contents: list[ZoneContent], addresses: dict[dns.name.Name, set[str]]
) -> None:
    """Name-server addresses: authoritative where the name lives, glue below cuts.

    A name is authoritative data of the deepest zone holding it unless it
    sits at or below a delegation there. Glue (RFC 1034 §4.2.1) is added
    where a delegation's or the apex's NS name sits at or below a cut.
    """
    for name, addrs in addresses.items():
        holders = [c for c in contents if name.is_subdomain(c.origin)]
        if holders:
            home = max(holders, key=lambda c: len(c.origin))
            if not any(name.is_subdomain(cut) for cut in home.cuts):
                _add_addresses(home, name, addrs, glue=False)
    for content in contents:
        referenced = {
            target
            for (owner, rdtype), rrset in content.rrsets.items()
            if rdtype == NS
            for target in (r.target for r in rrset)
        }
        for target in referenced:
            below = any(target.is_subdomain(cut) for cut in content.cuts)
            if below and target in addresses:
                _add_addresses(content, target, addresses[target], glue=True)


def _add_addresses(
    content: ZoneContent, name: dns.name.Name, addrs: set[str], glue: bool
) -> None:
    ordered = sorted(addrs, key=lambda a: (ipaddress.ip_address(a).version, a))
    v4 = [a for a in ordered if ipaddress.ip_address(a).version == 4]
    v6 = [a for a in ordered if ipaddress.ip_address(a).version == 6]
    ttl = content.spec.ttl
    for rdtype, values in ((A, v4), (AAAA, v6)):
        if not values:
            continue
        rdatas = [dns.rdata.from_text(IN, rdtype, v) for v in values]
        if glue:
            rrsets = content.glue.setdefault(name, [])
            if not any(r.rdtype == rdtype for r in rrsets):
                rrsets.append(dns.rrset.from_rdata_list(name, ttl, rdatas))
        elif (name, rdtype) not in content.rrsets:
            content.add_rdatas(name, ttl, rdatas)
