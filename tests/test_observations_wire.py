"""The fast decoder against ripe.atlas.sagan and dnspython (differential)."""

from __future__ import annotations

import json
import random
from base64 import b64decode
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest
from ripe.atlas.sagan import DnsResult, Result
from shared_data import ATLAS_RESULTS

from rootcanary.observation import Tally
from rootcanary.readers import atlas, wire
from rootcanary.readers.synthetic import results

REAL = ATLAS_RESULTS
LINES: list[dict[str, Any]] = [json.loads(x) for x in REAL.read_text().splitlines()]


def _abufs(result: dict[str, Any]) -> list[bytes]:
    out = []
    for entry in result.get("resultset") or [result]:
        text = (entry.get("result") or {}).get("abuf")
        if text:
            out.append(b64decode(text))
    return out


def _sagan_rcode(value: object) -> str:
    # sagan leaves rcodes it has no name for as numbers
    return value if isinstance(value, str) else f"RCODE{value}"


@pytest.mark.parametrize("index", range(len(LINES)))
def test_agrees_with_sagan_on_every_real_result(index: int) -> None:
    raw = LINES[index]
    parsed = DnsResult(
        raw, on_error=Result.ACTION_IGNORE, on_malformation=Result.ACTION_IGNORE
    )
    tally = Tally()
    ours = list(atlas.observations(raw, (REAL, index + 1, -1), tally))
    assert tally.total_skipped == 0
    responses = parsed.responses
    if not responses:  # a top-level error: sagan keeps no response
        assert parsed.is_error
        assert len(ours) == 1 and ours[0].rcode is None and ours[0].error
        return
    assert len(ours) == len(responses)
    for mine, theirs in zip(ours, responses, strict=True):
        assert mine.measurement == parsed.measurement_id
        assert mine.probe == parsed.probe_id
        assert mine.resolver == theirs.destination_address
        assert mine.af == theirs.af
        abuf = theirs.abuf
        if abuf is None:
            assert mine.rcode is None
            assert mine.error is not None
            assert (theirs.raw_data.get("error") is None) == (
                mine.error == atlas.NO_ABUF
            )
            continue
        header = abuf.header
        assert mine.rcode == _sagan_rcode(header.return_code)
        assert mine.ad is header.ad  # not header.authenticated_data: that is AA
        assert mine.extra["tc"] is header.tc
        question = abuf.questions[0] if abuf.questions else None
        assert mine.qname == (question.name if question else "")
        assert mine.qtype == (question.type if question else "")
        assert len(mine.answers) == len(abuf.answers)


@pytest.mark.parametrize("index", range(len(LINES)))
def test_scan_agrees_with_sagan_on_edns(index: int) -> None:
    parsed = DnsResult(
        LINES[index],
        on_error=Result.ACTION_IGNORE,
        on_malformation=Result.ACTION_IGNORE,
    )
    for response in parsed.responses:
        if response.abuf is None:
            continue
        data = response.raw_data
        packet = b64decode(data.get("result", data)["abuf"])
        found = wire.scan(packet)
        theirs = response.abuf.edns0
        if theirs is None:
            assert found.edns is None
            continue
        assert found.edns is not None
        version, udp, do, codes = found.edns
        assert (udp, bool(theirs.do), version) == (
            theirs.udp_size,
            do,
            theirs.version,
        )
        assert list(codes) == [option.code for option in theirs.options]


@pytest.mark.parametrize("index", range(len(LINES)))
def test_agrees_with_dnspython_on_every_real_abuf(index: int) -> None:
    for packet in _abufs(LINES[index]):
        found = wire.scan(packet)
        message = dns.message.from_wire(packet)
        assert found.rcode == message.rcode()
        assert found.flags == message.flags
        assert wire.summary(packet) == (found.rcode, found.flags, found.ede)
        question = wire.question(packet, found)
        assert wire.first_question(packet) == question
        if message.question:
            assert question == (
                message.question[0].name.to_text(),
                dns.rdatatype.to_text(message.question[0].rdtype),
            )
        expected = [
            line for rrset in message.answer for line in rrset.to_text().split("\n")
        ]
        assert list(wire.answer_texts(packet, found)) == expected


def _servfail(codes: list[tuple[int, str]], extended: int = 0) -> bytes:
    query = dns.message.make_query("x.bogus-sig.canary.test.", "A", want_dnssec=True)
    response = dns.message.make_response(query)
    options: list[dns.edns.Option] = [
        dns.edns.EDEOption(dns.edns.EDECode.make(code), text or None)
        for code, text in codes
    ]
    response.use_edns(0, dns.flags.DO, 1232, options=options)
    response.set_rcode(dns.rcode.Rcode.make(2 | (extended << 4)))
    return response.to_wire()


@pytest.mark.parametrize(
    "codes",
    [[(6, "signature invalid")], [(9, ""), (22, "no reachable authority")], []],
)
def test_ede_codes_and_texts_match_dnspython(codes: list[tuple[int, str]]) -> None:
    packet = _servfail(codes)
    found = wire.scan(packet)
    message = dns.message.from_wire(packet)
    ede = [o for o in message.options if o.otype == dns.edns.OptionType.EDE]
    assert found.ede == tuple(int(o.code) for o in ede)  # type: ignore[attr-defined]
    assert found.ede_text == tuple(o.text or "" for o in ede)  # type: ignore[attr-defined]
    assert wire.summary(packet)[2] == found.ede


def test_extended_rcode_comes_from_the_opt_record() -> None:
    packet = _servfail([], extended=1)  # upper bits 1, lower 2: 18
    found = wire.scan(packet)
    assert found.rcode == dns.message.from_wire(packet).rcode() == 18
    assert found.rcode_text == "BADTIME"


def test_synthetic_answers_decode_like_dnspython() -> None:
    for _, result in results(probes=30, rounds=1):
        for packet in _abufs(result):
            found = wire.scan(packet)
            message = dns.message.from_wire(packet)
            assert wire.summary(packet) == (found.rcode, found.flags, found.ede)
            ede = [o for o in message.options if o.otype == dns.edns.OptionType.EDE]
            assert found.ede == tuple(int(o.code) for o in ede)  # type: ignore[attr-defined]


def test_summary_and_scan_fail_on_the_same_broken_messages() -> None:
    """Cut and flip bytes of real answers: both decoders agree on each."""
    rng = random.Random(4035)
    packets = [p for line in LINES for p in _abufs(line)]
    checked = failed = 0
    for packet in packets:
        for _ in range(40):
            broken = bytearray(packet)
            if rng.random() < 0.5:
                broken = broken[: rng.randrange(len(broken) + 1)]
            else:
                for _ in range(rng.randrange(1, 4)):
                    if broken:
                        broken[rng.randrange(len(broken))] = rng.randrange(256)
            data = bytes(broken)
            try:
                found = wire.scan(data)
                expected: object = (found.rcode, found.flags, found.ede)
            except wire.WireError:
                expected = wire.WireError
            try:
                got: object = wire.summary(data)
            except wire.WireError:
                got = wire.WireError
            assert got == expected, data.hex()
            checked += 1
            failed += expected is wire.WireError
    assert checked == 40 * len(packets)
    assert 0 < failed < checked
