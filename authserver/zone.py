"""Signed zones in memory and the lookup that decides what kind of answer a name gets.

The lookup works on the lower-cased wire form of the query name so the hot
path never builds dnspython objects. Its result, a :data:`Resolution`, names
every record the answer will hold (the node, the wildcard, the NSEC or NSEC3
gap of the proof), so two queries with equal resolutions get the same answer
apart from the question name; that is what the response cache keys on.
"""

from __future__ import annotations

import base64
import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name
import dns.rrset

# Resolution kinds.
EXACT = 0  # the name exists and has the type
NODATA = 1  # the name exists, not the type (RFC 2308 §2.2)
WILD = 2  # synthesised from a wildcard (RFC 4592 §3.3.1)
WILD_NODATA = 3  # the wildcard exists, not the type
NXDOMAIN = 4  # neither the name nor a wildcard (RFC 2308 §2.1)
REFERRAL = 5  # at or below a delegation point (RFC 1034 §4.3.2)
REFUSED = 6  # not in any zone we serve

#: (kind, zone, node, proof index). ``node`` is the matched node, the wildcard
#: node (WILD*), the closest encloser (NXDOMAIN) or the cut (REFERRAL).
#: ``proof`` is the NSEC index covering the query name, or the NSEC3 index
#: covering the next closer name; -1 when not needed (no DO) or not known.
Resolution = tuple[int, "Zone | None", "Node | None", int]

TYPE_A, TYPE_AAAA, TYPE_TXT, TYPE_DS = 1, 28, 16, 43
TYPE_RRSIG, TYPE_NSEC, TYPE_ANY = 46, 47, 255
_AUTHORITATIVE_AT_CUT = (TYPE_DS, TYPE_NSEC)  # RFC 4035 §3.1.4.1, §2.3


@dataclass(slots=True, eq=False)
class Signed:
    """An RRset with the RRSIG RRset covering it (None when unsigned)."""

    rrset: dns.rrset.RRset
    sigs: dns.rrset.RRset | None


@dataclass(slots=True, eq=False)
class Node:
    """One owner name of a zone, with what the answer logic needs precomputed."""

    name: dns.name.Name
    rrsets: dict[int, Signed] = field(default_factory=dict)
    #: A delegation point (NS below the apex): only DS and NSEC are ours here.
    cut: bool = False
    #: whoami: A/AAAA/TXT made per query from the asking address.
    dynamic: bool = False
    #: NSEC at this name; ``nsec6`` is the variant shown to IPv6 clients at a
    #: dynamic node (its A/AAAA bits differ by address family).
    nsec: Signed | None = None
    nsec6: Signed | None = None
    #: NSEC3 zones: index of this name's own NSEC3 record.
    n3: int = -1
    #: The ``*.<name>`` node, if the zone has one.
    wild: Node | None = None
    #: Proof index covering ``*.<name>`` when that wildcard does not exist
    #: (NSEC index or NSEC3 index), for NXDOMAIN answers (RFC 4035 §3.1.3.2).
    wild_cover: int = -1
    #: For a wildcard node: the closest encloser it hangs off.
    parent: Node | None = None
    #: NSEC zones: lower-cased labels of the children, sorted (canonical
    #: order, RFC 4034 §6.1), the NSEC index of the last owner in each
    #: child's subtree, and the NSEC at or before this name. A missing name
    #: below this node sorts right after the subtree of the greatest child
    #: label below its own next-closer label, so these three lists give the
    #: covering NSEC without ordering whole names.
    kids: list[bytes] = field(default_factory=list)
    kid_last: list[int] = field(default_factory=list)
    self_cover: int = -1

    def has(self, rdtype: int, family: int) -> bool:
        if self.dynamic:
            if rdtype == TYPE_TXT:
                return True
            return rdtype == (TYPE_A if family == 4 else TYPE_AAAA)
        return rdtype in self.rrsets


@dataclass(slots=True, eq=False)
class Zone:
    """One signed zone in the form the server answers from."""

    origin: dns.name.Name
    wire: bytes  # lower-cased wire form of the apex
    apex: Node
    nodes: dict[bytes, Node]
    soa: Signed
    #: Addresses of name servers at or below cuts (RFC 1034 §4.2.1 glue).
    glue: dict[dns.name.Name, list[dns.rrset.RRset]]
    parent: Zone | None = None
    nsec3: bool = False
    n3_salt: bytes = b""
    n3_iterations: int = 0
    n3_digests: list[bytes] = field(default_factory=list)
    n3_records: list[tuple[Signed, Signed | None]] = field(default_factory=list)
    #: NSEC zones: owner names in canonical order (reversed label tuples).
    nsec_keys: list[tuple[bytes, ...]] = field(default_factory=list)
    nsec_nodes: list[Node] = field(default_factory=list)
    dynamic_ttl: int = 0
    text: str = ""
    #: Signs whoami answers on first use (and caches them); None without whoami.
    sign_online: Callable[[dns.rrset.RRset], Signed] | None = None

    def n3_hash(self, wire: bytes) -> bytes:
        """RFC 5155 §5 hash of a lower-cased wire name."""
        digest = hashlib.sha1(wire + self.n3_salt).digest()
        for _ in range(self.n3_iterations):
            digest = hashlib.sha1(digest + self.n3_salt).digest()
        return digest

    def n3_cover(self, wire: bytes) -> int:
        """Index of the NSEC3 record whose interval covers the hash of ``wire``."""
        # bisect_right - 1 wraps to the last record (-1) for hashes before the
        # first owner: the last NSEC3 covers the end and the start of the ring.
        index = bisect_right(self.n3_digests, self.n3_hash(wire)) - 1
        return index % len(self.n3_digests)

    def nsec_cover(self, key: tuple[bytes, ...]) -> int:
        """Index of the NSEC whose owner is the greatest name below ``key``."""
        return bisect_right(self.nsec_keys, key) - 1


def n3_label(digest: bytes) -> str:
    return base64.b32hexencode(digest).decode("ascii").lower()


def canonical_key(lname: bytes, offs: list[int]) -> tuple[bytes, ...]:
    """Reversed lower-case labels: tuple order is RFC 4034 §6.1 canonical order."""
    labels = [lname[offs[i] + 1 : offs[i + 1]] for i in range(len(offs) - 1)]
    labels.reverse()
    return tuple(labels)


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    return tuple(label.lower() for label in reversed(name.labels[:-1]))


class Served:
    """All zones of one server, keyed by the lower-cased wire form of the apex."""

    def __init__(self, zones: list[Zone]) -> None:
        self.zones = zones
        self.by_wire = {zone.wire: zone for zone in zones}


def label_offsets(lname: bytes) -> list[int]:
    """Start offsets of each label of a wire name, the root label last."""
    offs = []
    pos = 0
    while True:
        offs.append(pos)
        length = lname[pos]
        if length == 0:
            return offs
        pos += length + 1


def resolve(
    served: Served,
    lname: bytes,
    offs: list[int],
    qtype: int,
    family: int,
    proofs: bool,
) -> Resolution:
    """Decide the answer for a lower-cased wire name (RFC 1034 §4.3.2, RFC 4592).

    ``offs`` are the label offsets of ``lname`` (:func:`label_offsets`),
    ``family`` the asking address family (4 or 6, for whoami) and ``proofs``
    whether DNSSEC denial records are wanted (DO set).
    """
    by_wire = served.by_wire
    zone = None
    depth = 0
    for index, off in enumerate(offs):
        zone = by_wire.get(lname[off:] if off else lname)
        if zone is not None:
            depth = index
            break
    if zone is None:
        return (REFUSED, None, None, -1)
    if depth == 0 and qtype == TYPE_DS and zone.parent is not None:
        # RFC 4035 §3.1.4.1: DS lives in the parent; answer from the parent
        # side when we serve it too.
        zone = zone.parent
        depth = offs.index(len(lname) - len(zone.wire))
    nodes = zone.nodes
    node = zone.apex
    # Walk down from the apex: the first missing label ends at the closest
    # encloser; a cut on the way means a referral (RFC 1034 §4.3.2 step 3b).
    for i in range(depth - 1, -1, -1):
        child = nodes.get(lname[offs[i] :] if i else lname)
        if child is None:
            return _no_name(zone, node, lname, offs, i, qtype, family, proofs)
        node = child
        if node.cut and not (i == 0 and qtype in _AUTHORITATIVE_AT_CUT):
            return (REFERRAL, zone, node, -1)
    if qtype in (TYPE_ANY, TYPE_RRSIG):
        present = bool(node.rrsets) or node.dynamic
    else:
        present = node.has(qtype, family)
    if present:
        return (EXACT, zone, node, -1)
    return (NODATA, zone, node, -1)


def _no_name(
    zone: Zone,
    encloser: Node,
    lname: bytes,
    offs: list[int],
    missing: int,
    qtype: int,
    family: int,
    proofs: bool,
) -> Resolution:
    """The query name does not exist below ``encloser`` (label ``missing`` absent)."""
    wild = encloser.wild
    proof = -1
    if proofs:
        if zone.nsec3:
            # RFC 5155 §7.2.1: the next closer name is one label longer than
            # the closest encloser.
            proof = zone.n3_cover(lname[offs[missing] :] if missing else lname)
        else:
            label = lname[offs[missing] + 1 : offs[missing + 1]]
            pos = bisect_left(encloser.kids, label)
            proof = encloser.kid_last[pos - 1] if pos else encloser.self_cover
    if wild is None:
        return (NXDOMAIN, zone, encloser, proof)
    if qtype in (TYPE_ANY, TYPE_RRSIG):
        present = bool(wild.rrsets) or wild.dynamic
    else:
        present = wild.has(qtype, family)
    return (WILD if present else WILD_NODATA, zone, wild, proof)
