"""Answers of the canary scenario, checked in process with dnspython's validator.

Every positive answer validates up to the private root's trust anchor; each
bogus name fails for its own reason and only that one; denial proofs are
checked with RFC 4035 / RFC 5155 logic written independently of the server.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from authserver_support import (
    CANARY,
    Chain,
    nsec3_covers,
    nsec3_matches,
    nsec_covers,
    nsec_types,
    section_rrsets,
    shared_state,
    sigs_for,
)

from authserver.anchor import root_trust_anchor
from authserver.build import Built, ZoneBuilder
from authserver.engine import Endpoint, Engine
from authserver.keys import KeyStore
from rootcanary import names
from rootcanary.scenario import Scenario, load_scenario

RT = dns.rdatatype
Z = "canary.test."
ENDPOINT = Endpoint("udp", "127.0.20.1", 53)


@dataclass
class World:
    scenario: Scenario
    state: Path
    built: Built
    engine: Engine
    chain: Chain
    root_tag: int

    def ask(
        self,
        name: str,
        rdtype: str = "A",
        *,
        do: bool = True,
        src: str = "127.0.20.2",
        family: int = 4,
        payload: int = 4096,
        edns: bool = True,
        tcp: bool = False,
    ) -> dns.message.Message:
        query = dns.message.make_query(
            name, rdtype, want_dnssec=do, use_edns=0 if edns else False, payload=payload
        )
        wire = self.engine.handle(query.to_wire(), src, 5353, family, ENDPOINT, tcp)
        assert wire is not None
        return dns.message.from_wire(wire)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    scenario = load_scenario(CANARY)
    state = shared_state(tmp_path_factory)
    built = ZoneBuilder(scenario, state, (("127.0.20.1", 53),)).build()
    engine = Engine(built.served)
    anchor = root_trust_anchor(scenario, state)
    holder: dict[str, World] = {}

    def ask(name: str, rdtype: str) -> dns.message.Message:
        return holder["w"].ask(name, rdtype)

    w = World(
        scenario,
        state,
        built,
        engine,
        Chain(ask, list(anchor.ds_lines)),
        anchor.key_tags[0],
    )
    holder["w"] = w
    return w


def answer_of(reply: dns.message.Message, rdtype: int) -> dns.rrset.RRset:
    found = section_rrsets(reply.answer, rdtype)
    assert found, f"no {RT.to_text(rdtype)} in {reply}"
    return found[0]


def validate_answer(
    world: World, reply: dns.message.Message, rdtype: int, now: float | None = None
) -> None:
    rrset = answer_of(reply, rdtype)
    sigs = sigs_for(reply.answer, rrset)
    assert sigs is not None, "answer has no RRSIG"
    world.chain.validate(rrset, sigs, now)


# -- positive answers ----------------------------------------------------------


@pytest.mark.parametrize("rdtype", ["A", "AAAA", "TXT"])
@pytest.mark.parametrize(
    "name",
    [
        names.valid_name(Z),
        names.valid_name(Z, "p1a2b3"),
        "x.y." + names.valid_name(Z),
        names.sentinel_name(Z, "is-ta", 20326, "n0nce"),
        names.sentinel_name(Z, "not-ta", 38696, "n0nce"),
        names.whoami_name(Z, "l4bel"),
    ],
)
def test_positive_answers_validate_to_the_root_anchor(
    world: World, name: str, rdtype: str
) -> None:
    reply = world.ask(name, rdtype)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    if names.WHOAMI_LABEL in name and rdtype == "AAAA":
        return  # NODATA for an IPv4 client, checked below
    validate_answer(world, reply, RT.from_text(rdtype))


def test_wildcard_answers_prove_the_name_itself_absent(world: World) -> None:
    """RFC 4035 §3.1.3.3: a wildcard answer carries the NSEC covering the qname."""
    qname = dns.name.from_text(names.valid_name(Z, "w1ld"))
    reply = world.ask(qname.to_text())
    sig = sigs_for(reply.answer, answer_of(reply, RT.A))
    assert sig is not None
    assert sig[0].labels == len(qname) - 2  # signed as *.valid.Z
    nsecs = section_rrsets(reply.authority, RT.NSEC)
    assert any(nsec_covers(n, qname) for n in nsecs)
    assert world.chain.validate_section(reply.authority) == len(nsecs)


def test_root_priming_and_delegations(world: World) -> None:
    reply = world.ask(".", "NS")
    ns = answer_of(reply, RT.NS)
    assert [r.target.to_text() for r in ns] == ["a.root-servers."]
    addresses = section_rrsets(reply.additional, RT.A)
    assert addresses and addresses[0].name.to_text() == "a.root-servers."
    assert [r.to_text() for r in addresses[0]] == ["127.0.20.1"]
    validate_answer(world, reply, RT.NS)
    # The parent side answers DS (RFC 4035 §3.1.4.1), signed by the parent.
    for child, parent in (("test.", "."), (Z, "test."), (names.join("d2a13n1", Z), Z)):
        reply = world.ask(child, "DS")
        ds = answer_of(reply, RT.DS)
        sigs = sigs_for(reply.answer, ds)
        assert sigs is not None and sigs[0].signer.to_text() == parent
        assert reply.flags & dns.flags.AA
        world.chain.validate(ds, sigs)
    # Names in a child are answered from the child (closest enclosing zone).
    reply = world.ask("ns1.test.", "A")
    assert reply.flags & dns.flags.AA
    assert sigs_for(reply.answer, answer_of(reply, RT.A))[0].signer.to_text() == "test."  # type: ignore[index]


def test_every_zone_of_the_hierarchy_chains_to_the_anchor(world: World) -> None:
    checked = 0
    for zone in world.built.served.zones:
        if zone.text.startswith(names.join("bogus-ds", Z)):
            continue
        world.chain.keys(zone.origin)
        checked += 1
    assert checked == len(world.built.served.zones) - 1


# -- the bogus names -----------------------------------------------------------


def _sig(reply: dns.message.Message) -> dns.rdata.Rdata:
    sigs = sigs_for(reply.answer, answer_of(reply, RT.A))
    assert sigs is not None
    return sigs[0]


@pytest.mark.parametrize("label", [None, "u1"])
def test_bogus_sig_fails_only_on_the_signature_bytes(
    world: World, label: str | None
) -> None:
    reply = world.ask(names.bogus_name(Z, "sig", label))
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_answer(world, reply, RT.A)
    sig = _sig(reply)
    keys = world.chain.keys(dns.name.from_text(Z))
    assert sig.key_tag in {dns.dnssec.key_id(k) for k in keys}
    assert sig.inception < time.time() < sig.expiration


def test_bogus_expired_validates_only_inside_its_window(world: World) -> None:
    reply = world.ask(names.bogus_name(Z, "expired"))
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_answer(world, reply, RT.A)
    sig = _sig(reply)
    assert sig.expiration < time.time()
    validate_answer(world, reply, RT.A, now=sig.expiration - 60)


def test_bogus_future_validates_only_inside_its_window(world: World) -> None:
    reply = world.ask(names.bogus_name(Z, "future", "f2"))
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_answer(world, reply, RT.A)
    sig = _sig(reply)
    assert sig.inception > time.time()
    validate_answer(world, reply, RT.A, now=sig.inception + 60)


def test_bogus_nosig_has_no_rrsig_in_a_signed_zone(world: World) -> None:
    reply = world.ask(names.bogus_name(Z, "nosig"))
    answer_of(reply, RT.A)
    assert not section_rrsets(reply.answer, RT.RRSIG, RT.A)
    # The zone is signed: a NODATA there comes with a signed NSEC.
    nodata = world.ask(names.bogus_name(Z, "nosig"), "MX")
    assert world.chain.validate_section(nodata.authority) >= 2


def test_bogus_wrongkey_is_signed_by_a_key_outside_the_dnskey_set(world: World) -> None:
    reply = world.ask(names.bogus_name(Z, "wrongkey"))
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_answer(world, reply, RT.A)
    sig = _sig(reply)
    published = world.chain.keys(dns.name.from_text(Z))
    assert sig.key_tag not in {dns.dnssec.key_id(k) for k in published}
    store = KeyStore(world.state)
    with store.locked():
        wrong = store.key(Z, "wrongkey", 13, False)
    assert wrong.tag == sig.key_tag
    rrset = answer_of(reply, RT.A)
    keys = dns.rrset.from_rdata_list(Z, 3600, [wrong.dnskey])
    dns.dnssec.validate(
        rrset, sigs_for(reply.answer, rrset), {dns.name.from_text(Z): keys}
    )


def test_bogus_ds_child_is_sound_but_its_ds_matches_no_key(world: World) -> None:
    child = dns.name.from_text(names.bogus_name(Z, "ds"))
    reply = world.ask(child.to_text(), "DNSKEY")
    dnskeys = answer_of(reply, RT.DNSKEY)
    dns.dnssec.validate(dnskeys, sigs_for(reply.answer, dnskeys), {child: dnskeys})
    ds_reply = world.ask(child.to_text(), "DS")
    ds = answer_of(ds_reply, RT.DS)
    world.chain.validate(ds, sigs_for(ds_reply.answer, ds))  # type: ignore[arg-type]
    tags = {dns.dnssec.key_id(k) for k in dnskeys}
    for record in ds:
        assert record.key_tag in tags  # same key tag and algorithm ...
        made = [dns.dnssec.make_ds(child, k, record.digest_type) for k in dnskeys]
        assert record not in made  # ... but the digest matches nothing
    with pytest.raises(dns.dnssec.ValidationFailure):
        world.chain.keys(child)
    answer = world.ask(names.bogus_name(Z, "ds", "q"))
    assert sigs_for(answer.answer, answer_of(answer, RT.A))[0].signer == child  # type: ignore[index]


# -- denial of existence -------------------------------------------------------


def test_nsec_nxdomain_proves_name_and_wildcard_absent(world: World) -> None:
    qname = dns.name.from_text("no-such." + Z)
    reply = world.ask(qname.to_text())
    assert reply.rcode() == dns.rcode.NXDOMAIN
    nsecs = section_rrsets(reply.authority, RT.NSEC)
    assert any(nsec_covers(n, qname) for n in nsecs)
    wildcard = dns.name.from_text("*." + Z)
    assert any(nsec_covers(n, wildcard) for n in nsecs)
    assert section_rrsets(reply.authority, RT.SOA)
    world.chain.validate_section(reply.authority)


def test_nsec_nodata_shows_the_types_present(world: World) -> None:
    reply = world.ask(names.valid_name(Z), "MX")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    nsec = section_rrsets(reply.authority, RT.NSEC)[0]
    assert nsec.name == dns.name.from_text(names.valid_name(Z))
    types = nsec_types(nsec)
    assert RT.MX not in types and {RT.A, RT.AAAA, RT.TXT} <= types
    world.chain.validate_section(reply.authority)


def test_empty_non_terminal_nodata(world: World) -> None:
    ent = dns.name.from_text(names.join(names.SENTINEL_ZONE_LABEL, Z))
    reply = world.ask(ent.to_text())
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    nsecs = section_rrsets(reply.authority, RT.NSEC)
    assert any(nsec_covers(n, ent) for n in nsecs)
    world.chain.validate_section(reply.authority)


def test_wildcard_nodata_proof(world: World) -> None:
    qname = dns.name.from_text(names.valid_name(Z, "nd"))
    reply = world.ask(qname.to_text(), "MX")
    nsecs = section_rrsets(reply.authority, RT.NSEC)
    assert any(nsec_covers(n, qname) for n in nsecs)
    star = [
        n for n in nsecs if n.name == dns.name.from_text("*." + names.valid_name(Z))
    ]
    assert star and RT.MX not in nsec_types(star[0])
    world.chain.validate_section(reply.authority)


def test_nsec3_nxdomain_closest_encloser_proof(world: World) -> None:
    zone = dns.name.from_text(names.join("d2a13n3", Z))
    qname = dns.name.from_text("a.b.c", zone)
    reply = world.ask(qname.to_text())
    assert reply.rcode() == dns.rcode.NXDOMAIN
    n3 = section_rrsets(reply.authority, RT.NSEC3)
    # RFC 5155 §7.2.2: closest encloser matched, next closer and *.ce covered.
    assert any(nsec3_matches(n, zone) for n in n3)
    assert any(nsec3_covers(n, dns.name.from_text("c", zone)) for n in n3)
    assert any(nsec3_covers(n, dns.name.from_text("*", zone)) for n in n3)
    world.chain.validate_section(reply.authority)


def test_nsec3_nodata_and_wildcard(world: World) -> None:
    zone = dns.name.from_text(names.join("d2a8n3", Z))
    valid = dns.name.from_text("valid", zone)
    reply = world.ask(valid.to_text(), "MX")
    n3 = section_rrsets(reply.authority, RT.NSEC3)
    assert any(nsec3_matches(n, valid) and RT.MX not in nsec_types(n) for n in n3)
    world.chain.validate_section(reply.authority)
    qname = dns.name.from_text("xyz", valid)
    reply = world.ask(qname.to_text())
    validate_answer(world, reply, RT.A)
    n3 = section_rrsets(reply.authority, RT.NSEC3)
    assert any(nsec3_covers(n, qname) for n in n3)  # RFC 5155 §7.2.6
    world.chain.validate_section(reply.authority)


def test_whoami_answers_the_asking_address_per_family(world: World) -> None:
    name = names.whoami_name(Z, "fam")
    a = world.ask(name, "A", src="127.0.20.77")
    assert [r.to_text() for r in answer_of(a, RT.A)] == ["127.0.20.77"]
    txt = world.ask(name, "TXT", src="127.0.20.77")
    assert [r.to_text() for r in answer_of(txt, RT.TXT)] == ['"127.0.20.77"']
    v6 = world.ask(name, "AAAA", src="::1", family=6)
    assert [r.to_text() for r in answer_of(v6, RT.AAAA)] == ["::1"]
    validate_answer(world, v6, RT.AAAA)
    for src, family, absent in (("127.0.20.77", 4, "AAAA"), ("::1", 6, "A")):
        nodata = world.ask(name, absent, src=src, family=family)
        assert not nodata.answer and nodata.rcode() == dns.rcode.NOERROR
        nsecs = section_rrsets(nodata.authority, RT.NSEC)
        star = [n for n in nsecs if n.name.labels[0] == b"*"]
        assert star and RT.from_text(absent) not in nsec_types(star[0])
        world.chain.validate_section(nodata.authority)


def test_whoami_signatures_are_cached_across_labels(world: World) -> None:
    zone = world.built.zone(Z)
    signer = zone.sign_online
    assert signer is not None
    world.ask(names.whoami_name(Z, "first"), "TXT", src="127.0.20.90")
    before = signer.signed  # type: ignore[attr-defined]
    for _ in range(20):
        label = secrets.token_hex(4)
        reply = world.ask(names.whoami_name(Z, label), "TXT", src="127.0.20.90")
        validate_answer(world, reply, RT.TXT)
    assert signer.signed == before  # type: ignore[attr-defined]


# -- the algorithm matrix --------------------------------------------------------


def test_matrix_covers_every_signable_combination(world: World) -> None:
    served = {z.text for z in world.built.served.zones}
    matrix = [s for s in served if names.parse_matrix_label(s.split(".")[0])]
    # 8 algorithms x 3 digests x NSEC/NSEC3, minus RSASHA1 with NSEC3.
    assert len(matrix) == 8 * 3 * 2 - 3


def test_matrix_valid_validates_and_bogus_sig_fails(world: World) -> None:
    for zone in world.built.served.zones:
        parsed = names.parse_matrix_label(zone.text.split(".")[0])
        if parsed is None:
            continue
        digest, alg, nsec = parsed
        reply = world.ask(names.matrix_name(Z, zone.text.split(".")[0], "valid", "m1"))
        validate_answer(world, reply, RT.A)
        assert _sig(reply).algorithm == alg
        ds = answer_of(world.ask(zone.text, "DS"), RT.DS)
        assert {r.digest_type for r in ds} == {digest}
        assert bool(section_rrsets(reply.authority, RT.NSEC3)) == (nsec == 3)
        bad = world.ask(names.matrix_name(Z, zone.text.split(".")[0], "bogus-sig"))
        with pytest.raises(dns.dnssec.ValidationFailure):
            validate_answer(world, bad, RT.A)


# -- protocol details --------------------------------------------------------------


def test_big_answer_has_the_chosen_size(world: World) -> None:
    query = dns.message.make_query(
        names.big_name(Z), "TXT", want_dnssec=True, payload=4096
    )
    wire = world.engine.handle(query.to_wire(), "127.0.20.2", 1, 4, ENDPOINT)
    assert wire is not None and len(wire) == 1425
    small = world.ask(names.big_name(Z), "TXT", payload=1232)
    assert small.flags & dns.flags.TC and not small.answer
    full = world.ask(names.big_name(Z, "b1"), "TXT", payload=1232, tcp=True)
    assert not full.flags & dns.flags.TC
    validate_answer(world, full, RT.TXT)


def test_no_dnssec_records_without_do(world: World) -> None:
    for name in (names.valid_name(Z, "nd"), "no-such." + Z):
        reply = world.ask(name, do=False)
        for section in (reply.answer, reply.authority):
            assert not [r for r in section if r.rdtype in (RT.RRSIG, RT.NSEC, RT.NSEC3)]


def test_edns_buffer_and_plain_dns_limits(world: World) -> None:
    nx = "no-such-name.d2a10n3." + Z  # NSEC3 proof with RSA sigs: > 512 octets
    assert len(world.ask(nx).to_wire()) > 512
    plain = world.ask(nx, do=False, edns=False)
    assert not plain.flags & dns.flags.TC  # without DO it fits in 512
    tiny = world.ask(nx, payload=600)
    assert tiny.flags & dns.flags.TC and tiny.edns == 0


def test_query_case_is_kept(world: World) -> None:
    name = "VaLiD.CaNaRy.TeSt."
    query = dns.message.make_query(name, "A", want_dnssec=True)
    wire = world.engine.handle(query.to_wire(), "127.0.20.2", 1, 4, ENDPOINT)
    assert wire is not None
    assert wire[12:31] == b"\x05VaLiD\x06CaNaRy\x04TeSt\x00"
    reply = dns.message.from_wire(wire)
    assert reply.question[0].name.to_text() == name
    assert reply.answer[0].name.to_text() == name


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode"),
    [
        ("example.com.", "A", dns.rcode.NXDOMAIN),  # under our root: NXDOMAIN
        ("test.", "AXFR", dns.rcode.REFUSED),
    ],
)
def test_other_rcodes(world: World, name: str, rdtype: str, rcode: int) -> None:
    assert world.ask(name, rdtype).rcode() == rcode


def test_refused_outside_our_zones(tmp_path: Path, world: World) -> None:
    scenario_path = tmp_path / "tld.toml"
    scenario_path.write_text('[[zone]]\napex = "canary.test."\ntest_names = true\n')
    scenario = load_scenario(scenario_path)
    built = ZoneBuilder(scenario, tmp_path / "state", (("127.0.20.1", 53),)).build()
    engine = Engine(built.served)
    query = dns.message.make_query("example.com.", "A")
    reply = dns.message.from_wire(
        engine.handle(query.to_wire(), "127.0.0.1", 1, 4, ENDPOINT)
    )  # type: ignore[arg-type]
    assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.AA


def test_referral_to_an_external_child(tmp_path: Path) -> None:
    scenario_path = tmp_path / "ref.toml"
    scenario_path.write_text(
        '[[zone]]\napex = "test."\n'
        '[[zone.delegations]]\nname = "elsewhere.test."\n'
        'nameservers = [{ name = "ns.elsewhere.test.", addresses = ["127.0.20.99"] }]\n'
        'ds = ["12345 13 2 ' + "ab" * 32 + '"]\n'
        '[[zone.delegations]]\nname = "insecure.test."\n'
        'nameservers = [{ name = "ns1.test." }]\n'
    )
    scenario = load_scenario(scenario_path)
    built = ZoneBuilder(scenario, tmp_path / "state", (("127.0.20.1", 53),)).build()
    engine = Engine(built.served)

    def ask(name: str) -> dns.message.Message:
        query = dns.message.make_query(name, "A", want_dnssec=True)
        return dns.message.from_wire(
            engine.handle(query.to_wire(), "127.0.0.1", 1, 4, ENDPOINT)
        )  # type: ignore[arg-type]

    reply = ask("www.elsewhere.test.")
    assert not reply.flags & dns.flags.AA and reply.rcode() == dns.rcode.NOERROR
    assert (
        answer_of_section(reply.authority, RT.NS)[0].target.to_text()
        == "ns.elsewhere.test."
    )
    assert answer_of_section(reply.authority, RT.DS)
    glue = answer_of_section(reply.additional, RT.A)
    assert glue[0].to_text() == "127.0.20.99"
    unsigned = ask("x.insecure.test.")
    nsec = answer_of_section(unsigned.authority, RT.NSEC)
    assert RT.DS not in nsec_types(nsec) and RT.NS in nsec_types(
        nsec
    )  # RFC 4035 §3.1.4


def answer_of_section(section: list[dns.rrset.RRset], rdtype: int) -> dns.rrset.RRset:
    found = section_rrsets(section, rdtype)
    assert found
    return found[0]


def test_malformed_and_unusual_queries(world: World) -> None:
    def raw(wire: bytes) -> dns.message.Message | None:
        out = world.engine.handle(wire, "127.0.20.2", 1, 4, ENDPOINT)
        return None if out is None else dns.message.from_wire(out)

    query = dns.message.make_query(Z, "SOA")
    notify = query.to_wire()
    notify = notify[:2] + bytes([notify[2] | (4 << 3)]) + notify[3:]  # opcode NOTIFY
    assert raw(notify).rcode() == dns.rcode.NOTIMP  # type: ignore[union-attr]
    two = dns.message.make_query(Z, "SOA")
    two.question.append(two.question[0])
    assert raw(two.to_wire()).rcode() == dns.rcode.FORMERR  # type: ignore[union-attr]
    edns1 = dns.message.make_query(Z, "SOA", use_edns=1)
    assert raw(edns1.to_wire()).rcode() == dns.rcode.BADVERS  # type: ignore[union-attr]
    chaos = dns.message.make_query("version.bind.", "TXT", rdclass="CH")
    assert raw(chaos.to_wire()).rcode() == dns.rcode.REFUSED  # type: ignore[union-attr]
    response = dns.message.make_response(query).to_wire()
    assert raw(response) is None
    assert raw(b"\x12") is None
    assert (
        world.engine.drops["response"] >= 1 and world.engine.drops["short header"] >= 1
    )
    loop = bytes.fromhex("abcd01000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01"
    assert raw(loop).rcode() == dns.rcode.FORMERR  # type: ignore[union-attr]


def test_any_gets_one_rrset(world: World) -> None:
    reply = world.ask(names.valid_name(Z), "ANY")
    kinds = {r.rdtype for r in reply.answer if r.rdtype != RT.RRSIG}
    assert len(kinds) == 1  # RFC 8482 §4.2


# -- the caches give what a fresh rendering gives ---------------------------------


def _canonical(msg: dns.message.Message) -> tuple[object, ...]:
    def section(rrsets: list[dns.rrset.RRset]) -> frozenset[str]:
        return frozenset(r.to_text().lower() for r in rrsets)

    return (
        msg.rcode(),
        msg.flags,
        msg.question[0].to_text(),
        section(msg.answer),
        section(msg.authority),
        section(msg.additional),
    )


def _names(rng: Callable[[int], str]) -> list[tuple[str, str]]:
    out = []
    tails = [
        names.valid_name(Z),
        names.bogus_name(Z, "sig"),
        "sentinel." + Z,
        Z,
        "whoami." + Z,
        "nx." + Z,
        "d2a13n3." + Z,
        "valid.d1a8n1." + Z,
        "test.",
        ".",
    ]
    for tail in tails:
        for size in (1, 3, 10):
            for rdtype in ("A", "TXT", "MX", "DS"):
                out.append((f"{rng(size)}.{tail}".replace("..", "."), rdtype))
    return out


def test_shared_templates_equal_fresh_renderings(world: World) -> None:
    """Names sharing a cached template get exactly what rendering them alone gives,
    including names built to collide with the SOA RNAME (``hostmaster``)."""
    cached = world.engine
    special = [("hostmaster." + Z, "A"), ("abcdefghij." + Z, "A"), ("ns1x." + Z, "A")]
    queries = (
        special
        + _names(lambda n: secrets.token_hex(n)[:n] or "a")
        + _names(lambda n: "HostMaster"[:n])
    )
    for name, rdtype in queries:
        for do in (True, False):
            query = dns.message.make_query(name, rdtype, want_dnssec=do)
            wire = query.to_wire()
            fresh = Engine(world.built.served)
            expected = fresh._slow(wire, "127.0.20.2", 1, 4, ENDPOINT, False)
            got = cached.handle(wire, "127.0.20.2", 1, 4, ENDPOINT)
            assert got is not None and expected is not None
            assert _canonical(dns.message.from_wire(got)) == _canonical(
                dns.message.from_wire(expected)
            ), name


def test_nsec_proof_index_is_the_canonical_predecessor(world: World) -> None:
    """The per-node child index gives the same covering NSEC as ordering whole
    names (RFC 4034 §6.1), also for labels that sort before ``*`` or between
    existing children."""
    from authserver.zone import (
        NXDOMAIN,
        WILD,
        WILD_NODATA,
        canonical_key,
        label_offsets,
        resolve,
    )

    rng = random.Random(4034)
    alphabet = b"!#$%&'+,-0189AZ_`az{~\x00\x7f\xff"
    checked = 0
    for zone in world.built.served.zones:
        if zone.nsec3:
            continue
        for node in list(zone.nodes.values()):
            for _ in range(6):
                label = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
                name = dns.name.Name((label, *node.name.labels))
                lname = name.canonicalize().to_wire() or b""
                if lname in zone.nodes:
                    continue
                offs = label_offsets(lname)
                kind, answering, _, proof = resolve(
                    world.built.served, lname, offs, RT.A, 4, True
                )
                if kind not in (WILD, WILD_NODATA, NXDOMAIN) or answering is None:
                    continue
                if answering.nsec3:
                    continue  # below a cut into an NSEC3 child
                assert proof == answering.nsec_cover(canonical_key(lname, offs)), name
                checked += 1
    assert checked > 200


@pytest.fixture(scope="module")
def nsec3_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The canary test zone signed with NSEC3 (salted, one extra iteration)."""
    path = tmp_path_factory.mktemp("nsec3") / "n3.toml"
    path.write_text(
        '[[zone]]\napex = "."\n[[zone]]\napex = "test."\n'
        '[[zone]]\napex = "canary.test."\ntest_names = true\nnsec = "nsec3"\n'
        'nsec3_salt = "c0ffee"\nnsec3_iterations = 1\n'
    )
    scenario = load_scenario(path)
    state = shared_state(tmp_path_factory)
    built = ZoneBuilder(scenario, state, (("127.0.20.1", 53),)).build()
    anchor = root_trust_anchor(scenario, state)
    holder: dict[str, World] = {}

    def ask(name: str, rdtype: str) -> dns.message.Message:
        return holder["w"].ask(name, rdtype)

    w = World(
        scenario,
        state,
        built,
        Engine(built.served),
        Chain(ask, list(anchor.ds_lines)),
        anchor.key_tags[0],
    )
    holder["w"] = w
    return w


def test_nsec3_test_zone_whoami_proofs_per_family(nsec3_world: World) -> None:
    w = nsec3_world
    name = dns.name.from_text(names.whoami_name(Z, "n3w"))
    for src, family, present, absent in (
        ("127.0.20.5", 4, RT.A, RT.AAAA),
        ("::5", 6, RT.AAAA, RT.A),
    ):
        answer = w.ask(name.to_text(), RT.to_text(present), src=src, family=family)
        validate_answer(w, answer, present)
        nodata = w.ask(name.to_text(), RT.to_text(absent), src=src, family=family)
        n3 = section_rrsets(nodata.authority, RT.NSEC3)
        star = dns.name.from_text("*.whoami." + Z)
        matched = [n for n in n3 if nsec3_matches(n, star)]
        assert matched and absent not in nsec_types(matched[0])
        assert present in nsec_types(matched[0])
        assert any(nsec3_covers(n, name) for n in n3)  # next closer, RFC 5155 §7.2.5
        w.chain.validate_section(nodata.authority)


def test_nsec3_test_zone_nxdomain_and_bogus(nsec3_world: World) -> None:
    w = nsec3_world
    zone = dns.name.from_text(Z)
    reply = w.ask("a.b.nowhere." + Z)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    n3 = section_rrsets(reply.authority, RT.NSEC3)
    assert any(nsec3_matches(n, zone) for n in n3)
    assert any(nsec3_covers(n, dns.name.from_text("nowhere", zone)) for n in n3)
    assert any(nsec3_covers(n, dns.name.from_text("*", zone)) for n in n3)
    w.chain.validate_section(reply.authority)
    validate_answer(w, w.ask(names.valid_name(Z, "n3")), RT.A)
    with pytest.raises(dns.dnssec.ValidationFailure):
        validate_answer(w, w.ask(names.bogus_name(Z, "sig", "n3")), RT.A)


def test_nsec3_templates_equal_fresh_renderings(nsec3_world: World) -> None:
    for name, rdtype in _names(lambda n: secrets.token_hex(n)[:n] or "a"):
        for src, family in (("127.0.20.2", 4), ("::2", 6)):
            query = dns.message.make_query(name, rdtype, want_dnssec=True)
            wire = query.to_wire()
            fresh = Engine(nsec3_world.built.served)
            expected = fresh._slow(wire, src, 1, family, ENDPOINT, False)
            got = nsec3_world.engine.handle(wire, src, 1, family, ENDPOINT)
            assert got is not None and expected is not None
            assert _canonical(dns.message.from_wire(got)) == _canonical(
                dns.message.from_wire(expected)
            ), (name, src)
