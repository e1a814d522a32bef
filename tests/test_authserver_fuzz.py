"""Bad input: random and mutated packets neither crash nor silence the server.

Every packet gets FORMERR (or another error, or an answer when the mutation
happens to leave a valid query) or is dropped; drops are counted, logged and
reported, and their number is exactly the packets that had to be dropped:
shorter than a header, or with the QR bit of a response set.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from authserver_support import CANARY, Addresses, query, running_server, shared_state

from authserver.build import ZoneBuilder
from authserver.engine import Endpoint, Engine
from rootcanary import names
from rootcanary.scenario import load_scenario

NET = Addresses(net="127.0.22")
Z = "canary.test."
ALLOWED = {
    dns.rcode.NOERROR,
    dns.rcode.FORMERR,
    dns.rcode.NXDOMAIN,
    dns.rcode.NOTIMP,
    dns.rcode.REFUSED,
    dns.rcode.NOTAUTH,
}


def _valid(rng: random.Random) -> bytes:
    label = "".join(rng.choice("abcXYZ0129-") for _ in range(rng.randint(1, 12)))
    name = rng.choice(
        [names.valid_name(Z, label), f"{label}.{Z}", ".", Z, "x.d2a13n3." + Z]
    )
    msg = dns.message.make_query(
        name,
        rng.choice(["A", "AAAA", "TXT", "NS", "DS", "DNSKEY", "ANY"]),
        want_dnssec=rng.random() < 0.5,
        use_edns=rng.random() < 0.8 and 0,
    )
    msg.id = rng.randrange(65536)
    return msg.to_wire()


def _header(
    rng: random.Random, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack(
        "!HHHHHH", rng.randrange(65536), rng.choice([0, 0x0100]), qd, an, ns, ar
    )


def mutations(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, truncations, compression loops, oversized labels, bad EDNS."""
    out: list[bytes] = []
    for _ in range(count):
        kind = rng.randrange(10)
        base = _valid(rng)
        if kind == 0:
            out.append(rng.randbytes(rng.randint(0, 600)))
        elif kind == 1:
            out.append(base[: rng.randrange(len(base))])
        elif kind == 2:  # a pointer to itself, or forward, or out of the packet
            target = rng.choice([12, 14, 200, 0x3FFF])
            out.append(
                _header(rng) + struct.pack("!H", 0xC000 | target) + b"\x00\x01\x00\x01"
            )
        elif kind == 3:  # label longer than 63, or a name longer than 255
            if rng.random() < 0.5:
                size = rng.randint(64, 255)
                out.append(
                    _header(rng) + bytes([size]) + b"a" * size + b"\x00\x00\x01\x00\x01"
                )
            else:
                out.append(
                    _header(rng) + (b"\x3f" + b"b" * 63) * 5 + b"\x00\x00\x01\x00\x01"
                )
        elif kind == 4:  # OPT with a lying RDLEN or option length
            opt = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00"
            body = rng.choice(
                [
                    b"\x00\x10" + b"\x00\x0a\x00\x08abcd",
                    b"\x00\x04" + b"\x00\x0e\x00\x40",
                    b"\x00\x00junk",
                ]
            )
            out.append(_header(rng, ar=1) + b"\x00\x00\x01\x00\x01" + opt + body)
        elif kind == 5:  # two OPT RRs, or OPT with an owner name
            opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
            second = opt if rng.random() < 0.5 else b"\x01a" + opt
            out.append(_header(rng, ar=2) + b"\x00\x00\x01\x00\x01" + opt + second)
        elif kind == 6:  # flipped bits anywhere
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            out.append(bytes(data))
        elif kind == 7:  # counts that do not match the sections
            qd, an = rng.choice([(0, 0), (2, 0), (65535, 0), (1, 3), (1, 65535)])
            out.append(_header(rng, qd=qd, an=an) + base[12:])
        elif kind == 8:  # other opcodes, or a response
            flags = rng.choice(
                [(1 << 11), (2 << 11), (4 << 11), (5 << 11), (15 << 11), 0x8000]
            )
            out.append(base[:2] + struct.pack("!H", flags) + base[4:])
        else:
            out.append(base)
    return out


def must_drop(packet: bytes) -> bool:
    return len(packet) < 12 or bool(packet[2] & 0x80)


def test_engine_survives_mutated_packets(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    built = ZoneBuilder(load_scenario(CANARY), shared_state(tmp_path_factory)).build()
    engine = Engine(built.served)
    endpoint = Endpoint("udp", "127.0.22.1", 53)
    rng = random.Random(8145)
    packets = mutations(rng, 20000)
    for packet in packets:
        out = engine.handle(packet, "127.0.22.9", 4242, 4, endpoint)
        if must_drop(packet):
            assert out is None
            continue
        assert out is not None and len(out) >= 12, packet
        assert out[:2] == packet[:2]  # the id is echoed
        reply = dns.message.from_wire(out)
        assert reply.rcode() in ALLOWED or reply.rcode() == dns.rcode.BADVERS, packet
    assert sum(engine.drops.values()) == sum(map(must_drop, packets))
    assert sum(engine.formerr.values()) > 1000


@pytest.mark.integration
def test_running_server_survives_fuzzing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log = tmp_path / "q.log"
    rng = random.Random(5011)
    packets = mutations(rng, 4000)
    with running_server(
        tmp_path,
        CANARY,
        NET(1),
        "--state-dir",
        str(shared_state(tmp_path_factory)),
        "--query-log",
        str(log),
    ) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Each queued reply costs ~1 KB of buffer; the default would overflow.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setblocking(False)
        replies = 0
        for index, packet in enumerate(packets):
            sock.sendto(packet, (NET(1), 53))
            if index % 50 == 0:
                time.sleep(0.002)  # pace: no loss in the socket buffers
                replies += _drain(sock)
                if index % 500 == 0:  # still answering real queries
                    assert query(NET(1), names.valid_name(Z, f"f{index}")).answer
        quiet = time.monotonic() + 1.0
        while time.monotonic() < quiet:  # until a second passes without replies
            got = _drain(sock)
            replies += got
            if got:
                quiet = time.monotonic() + 1.0
            time.sleep(0.01)
        tcp = socket.create_connection((NET(1), 53), timeout=3)
        junk = b"ab\x01\x00" + b"\xff" * 10  # 65535 questions in 14 octets
        tcp.sendall(len(junk).to_bytes(2, "big") + junk + b"\x00\x00")  # then length 0
        reply = tcp.recv(100)
        assert reply[2:4] == b"ab" and reply[5] & 0x0F == dns.rcode.FORMERR
        assert tcp.recv(100) == b""  # a zero-length frame closes (RFC 7766 §8)
        tcp.close()
        assert query(NET(1), Z, "SOA", tcp=True).answer
        assert server.proc.poll() is None
        assert server.stop() == 0
    expected_drops = sum(map(must_drop, packets))
    match = re.search(r"dropped (\d+)", server.stderr)
    assert match and int(match.group(1)) == expected_drops, server.stderr[-500:]
    assert replies == len(packets) - expected_drops
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(1 for line in lines if "drop" in line) == expected_drops
    formerr = [line for line in lines if line["rcode"] == "FORMERR"]
    assert len(formerr) > 1000


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return count
        assert len(data) >= 12
        count += 1
