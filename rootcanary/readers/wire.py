"""A small, fast DNS response decoder for the classifier's hot path.

It reads what classification needs from a response in wire format (RFC 1035
§4.1): the header flags and RCODE, the question, the section counts, the EDNS
OPT record (RFC 6891 §6.1) and its Extended DNS Error options (RFC 8914 §2),
and the offsets of the answer records. Names are decoded only when asked for
and rdata is never parsed, which makes it some fifty times faster than a full
parse; :func:`answer_texts` renders the answers with dnspython when they are
needed (whoami answers, ``rootcanary observations``).

A differential test checks it against ripe.atlas.sagan and dnspython on every
real RIPE Atlas result in the shared data.
"""

from __future__ import annotations

import socket
import struct

import dns.exception
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_TYPE_CLASS = struct.Struct("!HH")
_OPTION = struct.Struct("!HH")

OPT = 41
EDE_OPTION = 15  # RFC 8914 §2
FLAG_TC = 0x0200
FLAG_AD = 0x0020  # RFC 4035 §3.2.3: the resolver says it validated the data
FLAG_CD = 0x0010
FLAG_AA = 0x0400
FLAG_QR = 0x8000

# Bytes a label may hold to be printed as is; every other byte is escaped
# the way dnspython (and RFC 4343 §2.1 master files) does.
_PLAIN = bytes(c for c in range(0x21, 0x7F) if chr(c) not in '"().;\\@$')
_MAX_POINTER_HOPS = 64  # a name has at most 127 labels; pointers loops end here


class WireError(ValueError):
    """The bytes are not a DNS message this decoder can walk."""


def _rcode_names() -> dict[int, str]:
    out = {}
    for value in range(4096):
        text = dns.rcode.to_text(dns.rcode.Rcode(value)) if value < 24 else ""
        out[value] = text if text and not text.isdigit() else f"RCODE{value}"
    return out


RCODE_TEXT: dict[int, str] = _rcode_names()


class _TypeNames(dict[int, str]):
    def __missing__(self, value: int) -> str:
        text = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(value))
        self[value] = text
        return text


TYPE_TEXT: dict[int, str] = _TypeNames()


class Scan:
    """What :func:`scan` found; offsets index into the wire bytes."""

    __slots__ = (
        "ancount",
        "answers_at",
        "arcount",
        "ede",
        "ede_text",
        "edns",
        "flags",
        "nscount",
        "qdcount",
        "qname_at",
        "qtype",
        "rcode",
    )

    def __init__(
        self,
        flags: int,
        rcode: int,
        qdcount: int,
        ancount: int,
        nscount: int,
        arcount: int,
        qname_at: int,
        qtype: int,
        answers_at: int,
        edns: tuple[int, int, bool, tuple[int, ...]] | None,
        ede: tuple[int, ...],
        ede_text: tuple[str, ...],
    ) -> None:
        self.flags = flags
        self.rcode = rcode  # extended RCODE merged (RFC 6891 §6.1.3)
        self.qdcount = qdcount
        self.ancount = ancount
        self.nscount = nscount
        self.arcount = arcount
        self.qname_at = qname_at  # -1 without a question
        self.qtype = qtype  # -1 without a question
        self.answers_at = answers_at
        self.edns = edns  # (version, udp size, DO, option codes) or None
        self.ede = ede
        self.ede_text = ede_text

    @property
    def ad(self) -> bool:
        return bool(self.flags & FLAG_AD)

    @property
    def tc(self) -> bool:
        return bool(self.flags & FLAG_TC)

    @property
    def rcode_text(self) -> str:
        return RCODE_TEXT.get(self.rcode, f"RCODE{self.rcode}")

    @property
    def qtype_text(self) -> str:
        return TYPE_TEXT[self.qtype] if self.qtype >= 0 else ""


def skip_name(wire: bytes, pos: int) -> int:
    """The offset just past the (possibly compressed) name at ``pos``."""
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:  # RFC 1035 §4.1.4 pointer: two bytes end the name
            return pos + 2
        if length > 63:  # 0x40/0x80: RFC 6891 §5 retired extended labels
            raise WireError(f"unsupported label type 0x{length:02x} at {pos}")
        pos += length + 1


def read_name(wire: bytes, pos: int) -> str:
    """The name at ``pos`` in text form, absolute, case kept, escaped."""
    labels: list[str] = []
    hops = 0
    total = 0
    while True:
        length = wire[pos]
        if length == 0:
            break
        if length >= 0xC0:
            hops += 1
            if hops > _MAX_POINTER_HOPS:
                raise WireError("compression pointer loop")
            pos = ((length & 0x3F) << 8) | wire[pos + 1]
            continue
        if length > 63:
            raise WireError(f"unsupported label type 0x{length:02x} at {pos}")
        label = wire[pos + 1 : pos + 1 + length]
        if len(label) != length:
            raise WireError("name runs past the end of the message")
        total += length + 1
        if total > 255:  # RFC 1035 §2.3.4
            raise WireError("name longer than 255 octets")
        labels.append(_label_text(label))
        pos += length + 1
    return ".".join(labels) + "." if labels else "."


def _label_text(label: bytes) -> str:
    if not label.translate(None, _PLAIN):
        return label.decode("ascii")
    out = []
    for byte in label:
        if byte in _PLAIN:
            out.append(chr(byte))
        elif 0x20 < byte < 0x7F:
            out.append("\\" + chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def scan(wire: bytes) -> Scan:
    """Walk a response: header, question, record offsets, OPT and EDE.

    Raises :class:`WireError` when the message cannot be walked. A truncated
    (TC=1) message whose records stop early at a record boundary is accepted
    with what it holds, as resolvers do before retrying over TCP (RFC 7766 §5).
    """
    try:
        return _scan(wire)
    except (IndexError, struct.error):
        raise WireError("message ends inside a record") from None


def _scan(wire: bytes) -> Scan:
    if len(wire) < 12:
        raise WireError(f"message of {len(wire)} bytes has no full header")
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    pos = 12
    qname_at = qtype = -1
    for index in range(qdcount):
        if index == 0:
            qname_at = pos
        pos = skip_name(wire, pos)
        if index == 0:
            qtype = _TYPE_CLASS.unpack_from(wire, pos)[0]
        pos += 4
    answers_at = pos
    rcode = flags & 0x000F
    edns = None
    ede: tuple[int, ...] = ()
    ede_text: tuple[str, ...] = ()
    end = len(wire)
    records = ancount + nscount + arcount
    for index in range(records):
        if pos == end and flags & FLAG_TC:
            break
        pos = skip_name(wire, pos)
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(wire, pos)
        pos += 10
        if pos + rdlength > end:
            raise WireError("record data runs past the end of the message")
        if rtype == OPT and index >= ancount + nscount:
            # RFC 6891 §6.1.3: CLASS is the UDP size, TTL holds the upper
            # RCODE bits, the version and the DO bit.
            rcode |= (ttl >> 24) << 4
            codes, ede, ede_text = _options(wire, pos, pos + rdlength)
            edns = ((ttl >> 16) & 0xFF, rclass, bool(ttl & 0x8000), codes)
        pos += rdlength
    if pos > end:
        raise WireError("message ends inside the question")
    return Scan(
        flags,
        rcode,
        qdcount,
        ancount,
        nscount,
        arcount,
        qname_at,
        qtype,
        answers_at,
        edns,
        ede,
        ede_text,
    )


def _options(
    wire: bytes, pos: int, end: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    codes: list[int] = []
    ede: list[int] = []
    texts: list[str] = []
    while pos < end:
        if pos + 4 > end:
            raise WireError("EDNS option header runs past the OPT record")
        code, length = _OPTION.unpack_from(wire, pos)
        pos += 4
        if pos + length > end:
            raise WireError("EDNS option runs past the OPT record")
        codes.append(code)
        if code == EDE_OPTION:
            if length < 2:
                raise WireError("EDE option shorter than its INFO-CODE")
            ede.append((wire[pos] << 8) | wire[pos + 1])
            # RFC 8914 §2: EXTRA-TEXT is UTF-8, may be NUL-terminated.
            raw = wire[pos + 2 : pos + length].rstrip(b"\x00")
            texts.append(raw.decode("utf-8", "replace"))
        pos += length
    return tuple(codes), tuple(ede), tuple(texts)


def question(wire: bytes, found: Scan) -> tuple[str, str]:
    """(qname, qtype) of the first question, or ("", "") without one."""
    if found.qname_at < 0:
        return "", ""
    return read_name(wire, found.qname_at), found.qtype_text


def first_question(wire: bytes) -> tuple[str, str]:
    """(qname, qtype) of the first question without a full scan, or ("", "").

    The question section starts right after the header (RFC 1035 §4.1.2).
    """
    try:
        if len(wire) < 12 or not (wire[4] << 8 | wire[5]):
            return "", ""
        end = skip_name(wire, 12)
        return read_name(wire, 12), TYPE_TEXT[wire[end] << 8 | wire[end + 1]]
    except (IndexError, WireError):
        return "", ""


def answer_records(
    wire: bytes, found: Scan
) -> list[tuple[int, int, int, int, int, int]]:
    """(owner offset, type, class, ttl, rdata offset, rdlength) per answer."""
    out = []
    pos = found.answers_at
    end = len(wire)
    for _ in range(found.ancount):
        if pos == end and found.flags & FLAG_TC:
            break
        owner = pos
        pos = skip_name(wire, pos)
        rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(wire, pos)
        pos += 10
        out.append((owner, rtype, rclass, ttl, pos, rdlength))
        pos += rdlength
    return out


def address_rdata(wire: bytes, found: Scan) -> list[str]:
    """Addresses of A/AAAA answers and the strings of TXT answers, as text.

    The whoami fast path: what :func:`answer_texts` would show for those
    types, without rendering anything else (RRSIGs, CNAMEs).
    """
    out: list[str] = []
    try:
        records = answer_records(wire, found)
    except (IndexError, struct.error):
        raise WireError("message ends inside an answer record") from None
    for _, rtype, _, _, at, length in records:
        data = wire[at : at + length]
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntop(socket.AF_INET, data))
        elif rtype == 28 and length == 16:
            out.append(socket.inet_ntop(socket.AF_INET6, data))
        elif rtype == 16:
            pos = 0
            while pos < length:
                size = data[pos]
                out.append(data[pos + 1 : pos + 1 + size].decode("utf-8", "replace"))
                pos += size + 1
    return out


def answer_texts(wire: bytes, found: Scan) -> tuple[str, ...]:
    """The answer section as master-file lines: ``owner TTL CLASS TYPE rdata``.

    The rdata is rendered by dnspython; rdata it refuses is shown in the
    RFC 3597 §5 generic form (``\\# <length> <hex>``), so that nothing is lost.
    """
    out = []
    try:
        records = answer_records(wire, found)
    except (IndexError, struct.error):
        raise WireError("message ends inside an answer record") from None
    for owner, rtype, rclass, ttl, at, length in records:
        name = read_name(wire, owner)
        try:
            rdata = dns.rdata.from_wire(
                dns.rdataclass.RdataClass.make(rclass),
                dns.rdatatype.RdataType.make(rtype),
                wire,
                at,
                length,
            )
            text = rdata.to_text()
        except (dns.exception.DNSException, ValueError, IndexError, struct.error):
            text = f"\\# {length} {wire[at : at + length].hex()}".rstrip()
        klass = dns.rdataclass.to_text(dns.rdataclass.RdataClass.make(rclass))
        out.append(f"{name} {ttl} {klass} {TYPE_TEXT[rtype]} {text}")
    return tuple(out)


def summary(wire: bytes) -> tuple[int, int, tuple[int, ...]]:
    """(RCODE with extended bits, header flags, EDE codes): the hot path.

    Equal to ``scan(wire)``'s ``rcode``, ``flags`` and ``ede``, raising
    :class:`WireError` on the same messages (a test checks both), with the
    walk inlined and nothing kept but the OPT record's content.
    """
    try:
        size = len(wire)
        if size < 12:
            raise WireError(f"message of {size} bytes has no full header")
        flags = wire[2] << 8 | wire[3]
        rcode = flags & 0x000F
        before = (wire[6] << 8 | wire[7]) + (wire[8] << 8 | wire[9])
        total = before + (wire[10] << 8 | wire[11])
        pos = 12
        questions = wire[4] << 8 | wire[5]
        while questions:
            length = wire[pos]
            while 0 < length < 64:
                pos += length + 1
                length = wire[pos]
            if length == 0:
                pos += 5  # the root label, QTYPE and QCLASS
            elif length >= 0xC0:
                pos += 6
            else:
                raise WireError(f"unsupported label type 0x{length:02x}")
            questions -= 1
        ede: tuple[int, ...] = ()
        index = 0
        while index < total:
            if pos == size and flags & FLAG_TC:
                break
            length = wire[pos]
            while 0 < length < 64:
                pos += length + 1
                length = wire[pos]
            if length == 0:
                pos += 1
            elif length >= 0xC0:
                pos += 2
            else:
                raise WireError(f"unsupported label type 0x{length:02x}")
            end = pos + 10 + (wire[pos + 8] << 8 | wire[pos + 9])
            if end > size:
                raise WireError("record data runs past the end of the message")
            if index >= before and wire[pos + 1] == OPT and wire[pos] == 0:
                rcode |= wire[pos + 4] << 4  # RFC 6891 §6.1.3 upper RCODE bits
                if end > pos + 10:
                    ede = _options(wire, pos + 10, end)[1]
            pos = end
            index += 1
        if pos > size:
            raise WireError("message ends inside the question")
        return rcode, flags, ede
    except IndexError:
        raise WireError("message ends inside a record") from None
