"""From a :data:`~authserver.zone.Resolution` to the response message.

Answers are minimal (no authority NS or additional addresses beyond glue and
the apex NS addresses), with RRSIGs and denial proofs only when DO is set
(RFC 4035 §3.1.1). The proofs follow RFC 4035 §3.1.3 for NSEC and RFC 5155
§7.2 for NSEC3.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from authserver.zone import (
    EXACT,
    NODATA,
    NXDOMAIN,
    REFERRAL,
    REFUSED,
    TYPE_ANY,
    TYPE_RRSIG,
    WILD,
    WILD_NODATA,
    Node,
    Resolution,
    Signed,
    Zone,
    name_key,
)

IN = dns.rdataclass.IN
RT = dns.rdatatype


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response in wire form, and what the cache and the log need to know."""

    wire: bytes
    rcode: int
    #: The answer differs by asking address (whoami, or a family variant).
    per_source: bool
    zone: str | None


class _Answer:
    """Collects the sections while deciding which records go in."""

    def __init__(self, zone: Zone | None, do: bool, family: int) -> None:
        self.zone = zone
        self.do = do
        self.family = family
        self.answer: list[dns.rrset.RRset] = []
        self.authority: list[dns.rrset.RRset] = []
        self.additional: list[dns.rrset.RRset] = []
        self.per_source = False
        self._denials: set[int] = set()

    def add(
        self,
        section: list[dns.rrset.RRset],
        signed: Signed,
        owner: dns.name.Name | None = None,
    ) -> None:
        rrset, sigs = signed.rrset, signed.sigs
        if owner is not None and owner != rrset.name:
            rrset = dns.rrset.from_rdata_list(owner, rrset.ttl, list(rrset))
            if sigs is not None:
                sigs = dns.rrset.from_rdata_list(owner, sigs.ttl, list(sigs))
        section.append(rrset)
        if self.do and sigs is not None:
            section.append(sigs)

    def denial(self, signed: Signed | None) -> None:
        """Add a proof record once (NSEC/NSEC3 records often do double duty)."""
        if signed is None or id(signed) in self._denials:
            return
        self._denials.add(id(signed))
        self.add(self.authority, signed)

    def nsec_of(self, node: Node) -> Signed | None:
        if node.nsec6 is not None:
            self.per_source = True
            if self.family == 6:
                return node.nsec6
        return node.nsec

    def n3(self, index: int) -> Signed | None:
        assert self.zone is not None
        if index < 0:
            return None
        v4, v6 = self.zone.n3_records[index]
        if v6 is not None:
            self.per_source = True
            if self.family == 6:
                return v6
        return v4

    def soa(self) -> None:
        assert self.zone is not None
        self.add(self.authority, self.zone.soa)


def dynamic_rrsets(zone: Zone, node: Node, src: str, family: int) -> dict[int, Signed]:
    """whoami: A or AAAA with the asking address, and TXT with it as text."""
    assert zone.sign_online is not None
    ttl = zone.dynamic_ttl
    rdtype = RT.A if family == 4 else RT.AAAA
    out: dict[int, Signed] = {}
    for kind, text in ((rdtype, src), (RT.TXT, f'"{src}"')):
        rdata = dns.rdata.from_text(IN, kind, text)
        rrset = dns.rrset.from_rdata_list(node.name, ttl, [rdata])
        out[kind] = zone.sign_online(rrset)
    return out


def _node_rrsets(ans: _Answer, node: Node, src: str) -> dict[int, Signed]:
    if node.dynamic:
        ans.per_source = True
        assert ans.zone is not None
        return dynamic_rrsets(ans.zone, node, src, ans.family)
    return node.rrsets


def _positive(
    ans: _Answer, node: Node, qtype: int, src: str, owner: dns.name.Name
) -> None:
    rrsets = _node_rrsets(ans, node, src)
    if qtype == TYPE_ANY:
        # RFC 8482 §4.2: answer ANY with one RRset rather than all of them.
        kinds = sorted(t for t in rrsets if t != RT.NSEC)
        ans.add(ans.answer, rrsets[kinds[0]], owner)
    elif qtype == TYPE_RRSIG:
        for kind in sorted(rrsets):
            sigs = rrsets[kind].sigs
            if sigs is not None:
                ans.add(ans.answer, Signed(sigs, None), owner)
    else:
        ans.add(ans.answer, rrsets[qtype], owner)
    if qtype == RT.NS and ans.zone is not None and node is ans.zone.apex:
        _addresses(ans, ans.zone, rrsets[RT.NS].rrset)


def _addresses(ans: _Answer, zone: Zone, ns: dns.rrset.RRset) -> None:
    """Addresses of NS targets that this zone holds, as glue or as data."""
    for rdata in ns:
        target = rdata.target
        glue = zone.glue.get(target)
        if glue is not None:
            ans.additional.extend(glue)
            continue
        node = zone.nodes.get(target.canonicalize().to_wire() or b"")
        if node is not None:
            for kind in (RT.A, RT.AAAA):
                if kind in node.rrsets:
                    ans.additional.append(node.rrsets[kind].rrset)


def _nodata_proof(ans: _Answer, node: Node) -> None:
    zone = ans.zone
    assert zone is not None
    if zone.nsec3:
        # RFC 5155 §7.2.3/§7.2.4: the NSEC3 matching the name.
        ans.denial(ans.n3(node.n3))
    elif node.nsec is not None or node.nsec6 is not None:
        ans.denial(ans.nsec_of(node))  # RFC 4035 §3.1.3.1
    else:
        # An empty non-terminal has no NSEC; the one covering it proves that
        # no type exists there (RFC 4035 §3.1.3.2 read with RFC 4592 §2.2.2).
        ans.denial(ans.nsec_of(zone.nsec_nodes[zone.nsec_cover(name_key(node.name))]))


def build(
    res: Resolution,
    qname: dns.name.Name,
    qtype: int,
    do: bool,
    src: str,
    family: int,
) -> _Answer:
    kind, zone, node, proof = res
    ans = _Answer(zone, do, family)
    if kind == REFUSED or zone is None or node is None:
        return ans
    if kind == EXACT:
        _positive(ans, node, qtype, src, node.name)
    elif kind == NODATA:
        ans.soa()
        if do:
            _nodata_proof(ans, node)
    elif kind == WILD:
        _positive(ans, node, qtype, src, qname)
        if do:
            # RFC 4035 §3.1.3.3 / RFC 5155 §7.2.6: prove the query name itself
            # (or its next closer name) does not exist.
            ans.denial(_cover(ans, zone, proof))
    elif kind == WILD_NODATA:
        ans.soa()
        if do:
            # RFC 4035 §3.1.3.4 / RFC 5155 §7.2.5.
            if zone.nsec3:
                assert node.parent is not None
                ans.denial(ans.n3(node.parent.n3))
            ans.denial(_cover(ans, zone, proof))
            ans.denial(ans.n3(node.n3) if zone.nsec3 else ans.nsec_of(node))
    elif kind == NXDOMAIN:
        ans.soa()
        if do:
            # RFC 4035 §3.1.3.2 / RFC 5155 §7.2.2 (closest encloser proof,
            # then no wildcard at the closest encloser).
            if zone.nsec3:
                ans.denial(ans.n3(node.n3))
            ans.denial(_cover(ans, zone, proof))
            ans.denial(_cover(ans, zone, node.wild_cover))
    elif kind == REFERRAL:
        ns = node.rrsets[RT.NS]
        ans.authority.append(ns.rrset)
        if do:
            ds = node.rrsets.get(RT.DS)
            if ds is not None:
                ans.add(ans.authority, ds)
            else:
                _nodata_proof(ans, node)  # RFC 4035 §3.1.4: no DS, insecure child
        _addresses(ans, zone, ns.rrset)
    return ans


def _cover(ans: _Answer, zone: Zone, index: int) -> Signed | None:
    if index < 0:
        return None
    if zone.nsec3:
        return ans.n3(index)
    return ans.nsec_of(zone.nsec_nodes[index])


def rcode_of(kind: int) -> int:
    if kind == NXDOMAIN:
        return dns.rcode.NXDOMAIN
    if kind == REFUSED:
        return dns.rcode.REFUSED
    return dns.rcode.NOERROR


def render(
    res: Resolution,
    qname: dns.name.Name,
    qtype: int,
    do: bool,
    edns: bool,
    src: str,
    family: int,
    payload: int,
) -> Rendered:
    """The response (id 0, RD and CD clear) for a resolved query.

    ``qname`` should be the lower-cased name: the caller copies the query's
    own name bytes over the question, which also sets the case of every
    compression pointer that refers to it (RFC 1035 §4.1.4).
    """
    ans = build(res, qname, qtype, do, src, family)
    kind = res[0]
    msg = dns.message.Message(id=0)
    msg.flags = dns.flags.QR
    if kind not in (REFERRAL, REFUSED):
        msg.flags |= dns.flags.AA
    rcode = rcode_of(kind)
    msg.set_rcode(dns.rcode.Rcode.make(rcode))
    msg.question = [dns.rrset.RRset(qname, IN, RT.RdataType.make(qtype))]
    msg.answer = ans.answer
    msg.authority = ans.authority
    msg.additional = ans.additional
    if edns:
        # RFC 3225 §3: DO is copied into the response.
        msg.use_edns(0, dns.flags.DO if do else 0, payload)
    wire = msg.to_wire(max_size=65535)
    zone = res[1]
    return Rendered(wire, rcode, ans.per_source, zone.text if zone else None)
