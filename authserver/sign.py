"""Signing: RRSIGs (valid and each bogus kind), NSEC/NSEC3 chains, runtime zones.

Signatures are deterministic (RSA PKCS#1 v1.5, EdDSA, and ECDSA per RFC 6979
as dnspython does it), and their times derive from a signing epoch, so
worker processes that re-sign independently serve identical bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from authserver.content import ZoneContent
from authserver.keys import ZoneKey
from authserver.zone import Node, Served, Signed, Zone, n3_label, name_key

log = logging.getLogger("authserver.sign")

IN = dns.rdataclass.IN
RT = dns.rdatatype
DAY = 86400


@dataclass(frozen=True)
class SigTimes:
    """Inception and expiration (UNIX seconds) of one signing epoch."""

    epoch: int
    inception: int
    expiration: int

    @classmethod
    def at(cls, epoch: int, validity: float, inception_offset: float) -> SigTimes:
        return cls(epoch, int(epoch - inception_offset), int(epoch + validity))


def mode_times(times: SigTimes, mode: str, validity: float) -> tuple[int, int]:
    """Inception and expiration for a signature mode.

    ``expired`` ended a day before the epoch; ``future`` starts when this
    epoch's signatures expire, so both stay wrong until the next re-signing
    (RFC 4035 §5.3.1 checks both bounds).
    """
    if mode == "expired":
        return times.epoch - int(validity) - 2 * DAY, times.epoch - DAY
    if mode == "future":
        return times.expiration, times.expiration + int(validity)
    return times.inception, times.expiration


def sign_rrset(
    rrset: dns.rrset.RRset,
    keys: list[tuple[ZoneKey, bool]],
    signer: dns.name.Name,
    inception: int,
    expiration: int,
) -> dns.rrset.RRset | None:
    """The RRSIG RRset of ``rrset``, one signature per (key, revoked)."""
    sigs = [
        dns.dnssec.sign(
            rrset,
            key.private,
            signer,
            key.published(revoked),
            inception=inception,
            expiration=expiration,
            policy=dns.dnssec.allow_all_policy,
        )
        for key, revoked in keys
    ]
    if not sigs:
        return None
    return dns.rrset.from_rdata_list(rrset.name, rrset.ttl, sigs)


def _corrupt(sigs: dns.rrset.RRset) -> dns.rrset.RRset:
    """Flip bits in the middle of each signature: well-formed, never valid."""
    bad = []
    for sig in sigs:
        data = bytearray(sig.signature)
        data[len(data) // 2] ^= 0x5A
        bad.append(sig.replace(signature=bytes(data)))
    return dns.rrset.from_rdata_list(sigs.name, sigs.ttl, bad)


class ZoneSigner:
    """Signs the RRsets of one zone content for one epoch."""

    def __init__(self, content: ZoneContent, times: SigTimes) -> None:
        self.content = content
        self.times = times
        self.origin = content.origin
        self.zone_keys = content.signing_keys(dnskey_set=False)
        self.dnskey_keys = content.signing_keys(dnskey_set=True)

    def sign(self, rrset: dns.rrset.RRset, mode: str = "valid") -> Signed:
        if rrset.rdtype == RT.DNSKEY and rrset.name == self.origin:
            keys = self.dnskey_keys
        elif mode == "wrongkey":
            assert self.content.wrongkey is not None
            keys = [(self.content.wrongkey, False)]
        else:
            keys = self.zone_keys
        if mode == "nosig":
            return Signed(rrset, None)
        inception, expiration = mode_times(
            self.times, mode, self.content.spec.signature_validity
        )
        sigs = sign_rrset(rrset, keys, self.origin, inception, expiration)
        if mode == "sig" and sigs is not None:
            sigs = _corrupt(sigs)
        return Signed(rrset, sigs)


class OnlineSigner:
    """Signs whoami answers when first asked, and remembers the signatures.

    The RRSIG of a wildcard-synthesised RRset covers the wildcard owner
    (RFC 4035 §5.3.2), so the cache key is (owner, type, data): every unique
    probe label under ``whoami`` from one resolver reuses one signature.
    """

    def __init__(self, signer: ZoneSigner, limit: int = 65536) -> None:
        self._signer = signer
        self._cache: dict[tuple[dns.name.Name, int, str], Signed] = {}
        self._limit = limit
        self.signed = 0

    def __call__(self, rrset: dns.rrset.RRset) -> Signed:
        key = (rrset.name, rrset.rdtype, rrset[0].to_text())
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()  # bounded: a flood of sources cannot grow it
            hit = self._cache[key] = self._signer.sign(rrset)
            self.signed += 1
        return hit


def _nsec(
    owner: dns.name.Name, next_name: dns.name.Name, types: set[int], ttl: int
) -> dns.rrset.RRset:
    rdata = dns.rdtypes.ANY.NSEC.NSEC(  # type: ignore[no-untyped-call]
        IN, RT.NSEC, next_name, dns.rdtypes.ANY.NSEC.Bitmap.from_rdtypes(_types(types))
    )
    return dns.rrset.from_rdata_list(owner, ttl, [rdata])


def _nsec3(
    content: ZoneContent,
    digest: bytes,
    next_digest: bytes,
    types: set[int],
    ttl: int,
) -> dns.rrset.RRset:
    spec = content.spec
    rdata = dns.rdtypes.ANY.NSEC3.NSEC3(  # type: ignore[no-untyped-call]
        IN,
        RT.NSEC3,
        1,  # SHA-1, RFC 5155 §11
        0,  # no opt-out
        spec.nsec3_iterations,
        bytes.fromhex(spec.nsec3_salt),
        next_digest,
        dns.rdtypes.ANY.NSEC3.Bitmap.from_rdtypes(_types(types)),
    )
    owner = dns.name.from_text(n3_label(digest), content.origin)
    return dns.rrset.from_rdata_list(owner, ttl, [rdata])


def _types(types: set[int]) -> list[RT.RdataType]:
    return [RT.RdataType.make(t) for t in sorted(types)]


def _dynamic_types(family: int) -> set[int]:
    return {RT.A if family == 4 else RT.AAAA, RT.TXT, RT.RRSIG}


def sign_zone(content: ZoneContent, times: SigTimes) -> Zone:
    """Sign a zone content and build the runtime :class:`Zone`."""
    signer = ZoneSigner(content, times)
    origin = content.origin
    nodes: dict[dns.name.Name, Node] = {}

    def node_for(name: dns.name.Name) -> Node:
        node = nodes.get(name)
        if node is None:
            node = nodes[name] = Node(name)
        return node

    for (owner, rdtype), rrset in content.rrsets.items():
        node = node_for(owner)
        if owner in content.cuts and owner != origin:
            node.cut = True
            if rdtype != RT.DS:
                node.rrsets[rdtype] = Signed(rrset, None)  # RFC 4035 §2.2: NS unsigned
                continue
        node.rrsets[rdtype] = signer.sign(rrset, content.modes.get(owner, "valid"))
    for owner in content.dynamic:
        node_for(owner).dynamic = True
    # Empty non-terminals exist (RFC 4592 §2.2.2): every ancestor up to the apex.
    for name in list(nodes):
        parent = name.parent() if name != origin else None
        while (
            parent is not None and parent.is_subdomain(origin) and parent not in nodes
        ):
            nodes[parent] = Node(parent)
            parent = parent.parent() if parent != origin else None
    spec = content.spec
    neg_ttl = min(spec.ttl, spec.negative_ttl)  # RFC 9077 §3
    wildcard = b"*"
    for name, node in nodes.items():
        if name.labels[0] == wildcard and name != origin:
            encloser = nodes[name.parent()]
            encloser.wild = node
            node.parent = encloser
    zone = Zone(
        origin=origin,
        wire=origin.canonicalize().to_wire() or b"",
        apex=nodes[origin],
        nodes={},
        soa=_negative_soa(nodes[origin].rrsets[RT.SOA], neg_ttl),
        glue=content.glue,
        nsec3=spec.nsec3,
        n3_salt=bytes.fromhex(spec.nsec3_salt),
        n3_iterations=spec.nsec3_iterations,
        dynamic_ttl=spec.whoami_ttl,
        text=origin.to_text(),
    )
    if spec.nsec3:
        _chain_nsec3(content, signer, zone, nodes, neg_ttl)
    else:
        _chain_nsec(signer, zone, nodes, neg_ttl)
    zone.nodes = {
        (name.canonicalize().to_wire() or b""): node for name, node in nodes.items()
    }
    if content.dynamic:
        zone.sign_online = OnlineSigner(signer)
    return zone


def _negative_soa(soa: Signed, ttl: int) -> Signed:
    """The SOA as negative answers carry it: TTL = min(SOA TTL, MINIMUM)
    (RFC 2308 §3); the RRSIG keeps the original TTL in its RDATA."""
    ttl = min(ttl, soa.rrset.ttl)
    rrset = dns.rrset.from_rdata_list(soa.rrset.name, ttl, list(soa.rrset))
    sigs = soa.sigs
    if sigs is not None:
        sigs = dns.rrset.from_rdata_list(sigs.name, ttl, list(sigs))
    return Signed(rrset, sigs)


def _node_types(node: Node, family: int = 4) -> set[int]:
    if node.dynamic:
        return _dynamic_types(family)
    types = set(node.rrsets)
    if node.cut:
        # RFC 4035 §2.3: at a cut the bitmap shows NS and DS; RRSIG only when
        # something here is signed (the DS), NSEC3 likewise (RFC 5155 §3.2.1).
        return types | ({RT.RRSIG} if RT.DS in types else set())
    return types | {RT.RRSIG} if types else types


def _chain_nsec(
    signer: ZoneSigner, zone: Zone, nodes: dict[dns.name.Name, Node], ttl: int
) -> None:
    owners = sorted(
        (node for node in nodes.values() if node.rrsets or node.dynamic),
        key=lambda n: name_key(n.name),
    )
    for index, node in enumerate(owners):
        following = owners[(index + 1) % len(owners)].name
        for family in (4, 6) if node.dynamic else (4,):
            types = _node_types(node, family) | {RT.NSEC, RT.RRSIG}
            signed = signer.sign(_nsec(node.name, following, types, ttl))
            if family == 4:
                node.nsec = signed
            else:
                node.nsec6 = signed
    zone.nsec_nodes = owners
    zone.nsec_keys = [name_key(n.name) for n in owners]
    _child_index(zone, nodes, owners)
    for node in nodes.values():
        if node.wild is None:
            star = dns.name.Name((b"*", *node.name.labels))
            node.wild_cover = zone.nsec_cover(name_key(star))


def _child_index(
    zone: Zone, nodes: dict[dns.name.Name, Node], owners: list[Node]
) -> None:
    """Fill ``kids``, ``kid_last`` and ``self_cover`` of every node."""
    origin = zone.origin
    last: dict[dns.name.Name, int] = {}
    for index, owner in enumerate(owners):  # ascending: the last write wins
        name: dns.name.Name | None = owner.name
        while name is not None:
            last[name] = index
            name = name.parent() if name != origin else None
    children: dict[dns.name.Name, list[bytes]] = {}
    for name in nodes:
        if name != origin:
            children.setdefault(name.parent(), []).append(name.labels[0].lower())
    position = {id(node): i for i, node in enumerate(owners)}
    for name, node in nodes.items():
        node.kids = sorted(children.get(name, []))
        node.kid_last = [last[dns.name.Name((kid, *name.labels))] for kid in node.kids]
        own = position.get(id(node))
        node.self_cover = own if own is not None else zone.nsec_cover(name_key(name))


def _chain_nsec3(
    content: ZoneContent,
    signer: ZoneSigner,
    zone: Zone,
    nodes: dict[dns.name.Name, Node],
    ttl: int,
) -> None:
    # RFC 5155 §7.1: every authoritative name and empty non-terminal has an
    # NSEC3; names below cuts (glue) do not, and there is no opt-out here.
    hashed = sorted(
        (zone.n3_hash(node.name.canonicalize().to_wire() or b""), node)
        for node in nodes.values()
    )
    digests = [digest for digest, _ in hashed]
    records: list[tuple[Signed, Signed | None]] = []
    for index, (digest, node) in enumerate(hashed):
        following = digests[(index + 1) % len(digests)]
        node.n3 = index
        variants: list[Signed] = []
        for family in (4, 6) if node.dynamic else (4,):
            rrset = _nsec3(content, digest, following, _node_types(node, family), ttl)
            variants.append(signer.sign(rrset))
        records.append((variants[0], variants[1] if len(variants) > 1 else None))
    zone.n3_digests = digests
    zone.n3_records = records
    for node in nodes.values():
        if node.wild is None:
            star = dns.name.Name((b"*", *node.name.labels))
            node.wild_cover = zone.n3_cover(star.canonicalize().to_wire() or b"")


def link(zones: list[Zone], parents: dict[str, str | None]) -> Served:
    """Tie parent zones to children and index them for lookups."""
    by_text = {zone.text: zone for zone in zones}
    for zone in zones:
        parent = parents.get(zone.text)
        zone.parent = by_text[parent] if parent else None
    return Served(zones)
