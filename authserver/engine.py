"""Wire in, wire out: the query handler, with its caches and counters.

The hot path reads the header, the question and the OPT RR with plain byte
indexing and looks the answer up in two caches:

* ``exact``: keyed by the lower-cased wire name, type, class and the DO/EDNS
  bits; one dict lookup for repeated names.
* ``templates``: keyed by the :data:`~authserver.zone.Resolution` (which
  fixes every record of the answer), the type, the flags and the length of
  the name. Probes with a fresh label per query (cache busting) hit here: the
  answer to ``<label>.valid.Z`` differs from the first one rendered only in
  the question name, whose bytes are copied from the query. Compression
  pointers into the question then point at the same offsets, because every
  name other than the query name itself is an existing name, a suffix of it
  at a fixed distance from its end.

A response is the cached wire with the query's id, RD and CD bits
(RFC 1035 §4.1.1, RFC 4035 §3.1.6) and name bytes (0x20 case) patched in.
Anything unusual falls back to dnspython (:meth:`Engine._slow`), which gives
FORMERR, NOTIMP, BADVERS or REFUSED, or drops and counts.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from collections import Counter

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from authserver import querylog as ql
from authserver.render import Rendered, render
from authserver.zone import (
    NXDOMAIN,
    REFERRAL,
    REFUSED,
    WILD,
    WILD_NODATA,
    Resolution,
    Served,
    label_offsets,
    resolve,
)

log = logging.getLogger("authserver.engine")

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"
_OPT_TYPE = b"\x00\x29"
CACHE_LIMIT = 100_000
_FLAGKEY = (b"\x00", b"\x01", b"\x02", b"\x03")
# Query types that are never answered from zone data.
_META = frozenset({0, 41, 249, 250, 251, 252, 253, 254})
_BOOL = ("false", "true")
_NO_EDNS = '"edns": null, "bufsize": null, "do": false, '
_NO_OPTS = '"opts": [], "edns_key_tag": null, '
# Indexed by RD (0x01 of byte 2) | CD (0x10 of byte 3).
_RDCD = {x: f'"rd": {_BOOL[x & 1]}, "cd": {_BOOL[x >> 4]}, ' for x in (0, 1, 16, 17)}


class Endpoint:
    """A listening socket as the query log names it."""

    __slots__ = ("head", "host", "mid", "port", "transport")

    def __init__(self, transport: str, host: str, port: int) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        # The constant parts of a log line around the source address.
        self.head = f'"transport": "{transport}", "src": "'
        self.mid = f', "dst": {json.dumps(host)}, "dport": {port}, '


class Resp:
    """A cached response: the wire split around the question name."""

    __slots__ = (
        "counts",
        "flags",
        "log_full",
        "log_tc",
        "qend",
        "size",
        "tail",
        "tc_counts",
        "tc_flags",
        "tc_size",
        "tc_tail",
    )

    def __init__(self, rendered: Rendered, qend: int, edns: bool, do: bool) -> None:
        wire = rendered.wire
        self.qend = qend
        self.size = len(wire)
        self.counts = wire[4:12]
        self.tail = wire[qend:]
        f2, f3 = wire[2], wire[3]
        # Index: RD (0x01 of byte 2) | CD (0x10 of byte 3) of the query.
        self.flags = [b""] * 18
        self.tc_flags = [b""] * 18
        for x in (0, 1, 16, 17):
            self.flags[x] = bytes((f2 | (x & 1), f3 | (x & 0x10)))
            self.tc_flags[x] = bytes((f2 | (x & 1) | 0x02, f3 | (x & 0x10)))
        # RFC 6891 §7 / RFC 2181 §9: a truncated answer keeps the question
        # and the OPT RR and drops every section's records.
        opt = b""
        if edns:
            opt = (
                b"\x00\x00\x29"
                + wire_payload(wire)
                + b"\x00\x00"
                + (b"\x80\x00" if do else b"\x00\x00")
                + b"\x00\x00"
            )
        self.tc_counts = b"\x00\x01\x00\x00\x00\x00" + (
            b"\x00\x01" if edns else b"\x00\x00"
        )
        self.tc_tail = wire[qend : qend + 4] + opt
        self.tc_size = qend + 4 + len(opt)
        self.log_full = ql.tail(rendered.rcode, self.size, False, rendered.zone)
        self.log_tc = ql.tail(rendered.rcode, self.tc_size, True, rendered.zone)


def template_name(res: Resolution, lname: bytes, offs: list[int]) -> dns.name.Name:
    """The name to render a shared answer with: the query name, with the part
    that no zone holds replaced by 0xFF octets of the same length.

    Every answer sharing the resolution has the same existing suffix (the
    closest encloser, or the cut); only the labels left of it vary. Rendering
    them as octets that occur in no zone, SOA or NS name means the compressor
    can point into the question only at that common suffix or at the whole
    name, so the answer is right for every name of the same length.
    """
    kind, _zone, node, _proof = res
    if kind in (WILD, WILD_NODATA):
        assert node is not None and node.parent is not None
        keep = len(node.parent.name.to_wire() or b"")
    elif kind in (NXDOMAIN, REFERRAL):
        assert node is not None
        keep = len(node.name.to_wire() or b"")
    elif kind == REFUSED:
        keep = 1
    else:
        return dns.name.from_wire(lname, 0)[0]
    unique = len(lname) - keep
    labels: list[bytes] = []
    while unique > 0:
        size = min(63, unique - 1)
        if unique - (size + 1) == 1:
            size -= 1  # a lone length octet is no label; leave two
        labels.append(b"\xff" * size)
        unique -= size + 1
    suffix = dns.name.from_wire(lname, len(lname) - keep)[0]
    return dns.name.Name((*labels, *suffix.labels))


def wire_payload(wire: bytes) -> bytes:
    """The UDP payload field of the OPT RR at the end of a rendered response."""
    return wire[-8:-6]


class Engine:
    """Answers queries from one :class:`Served`; one per worker process."""

    def __init__(
        self, served: Served, payload: int = 4096, querylog: ql.QueryLog | None = None
    ) -> None:
        self.served = served
        self.payload = payload
        self.querylog = querylog
        self.exact: dict[bytes, Resp] = {}
        self.templates: dict[tuple[object, ...], Resp | dict[str, Resp]] = {}
        self.clock = ql.Clock()
        self.qtext: dict[bytes, str] = {}
        self._qfrag: dict[bytes, str] = {}
        self._efrag: dict[int, str] = {}
        self.counters: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.formerr: Counter[str] = Counter()
        self.queries = 0
        self.shared = 0  # answers from a template rendered for another name
        self.rendered = 0  # answers rendered with dnspython

    def swap(self, served: Served) -> None:
        """Serve a newly signed hierarchy; cached answers of the old one go."""
        self.served = served
        self.exact = {}
        self.templates = {}

    # -- the hot path -------------------------------------------------------

    def handle(
        self,
        data: bytes,
        src: str,
        sport: int,
        family: int,
        endpoint: Endpoint,
        tcp: bool = False,
    ) -> bytes | None:
        """The response to one query, or None to drop it.

        Only a plain QUERY with one question and at most an OPT RR takes this
        path; everything else, and anything it cannot parse, goes to
        :meth:`_slow`.
        """
        self.queries += 1
        n = len(data)
        if n < 17 or data[2] & 0xF8 or data[4:10] != _ONE_QUESTION or data[10]:
            return self._slow(data, src, sport, family, endpoint, tcp)
        ar = data[11]
        pos = 12
        try:
            length = data[pos]
            while length:
                if length > 63:
                    return self._slow(data, src, sport, family, endpoint, tcp)
                pos += length + 1
                length = data[pos]
        except IndexError:
            return self._slow(data, src, sport, family, endpoint, tcp)
        qend = pos + 1
        end = qend + 4
        bufsize = 0
        do = 0
        opts: list[int] | None = None
        if ar == 1:
            # RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size,
            # TTL = extended rcode, version, DO and Z; then RDLEN and options.
            if (
                n < end + 11
                or data[end]
                or data[end + 1 : end + 3] != _OPT_TYPE
                or data[end + 6]  # EDNS version > 0: BADVERS in the slow path
            ):
                return self._slow(data, src, sport, family, endpoint, tcp)
            bufsize = data[end + 3] << 8 | data[end + 4]
            do = data[end + 7] >> 7
            rdlen = data[end + 9] << 8 | data[end + 10]
            if end + 11 + rdlen != n:
                return self._slow(data, src, sport, family, endpoint, tcp)
            if rdlen:
                opts = []
                at = end + 11
                while at < n:
                    if at + 4 > n:
                        return self._slow(data, src, sport, family, endpoint, tcp)
                    olen = data[at + 2] << 8 | data[at + 3]
                    opts.append(data[at] << 8 | data[at + 1])
                    at += 4 + olen
                if at != n:
                    return self._slow(data, src, sport, family, endpoint, tcp)
        elif ar or end != n:
            return self._slow(data, src, sport, family, endpoint, tcp)
        if qend - 12 > 255:  # RFC 1035 §3.1: 255 octets at most
            return self._slow(data, src, sport, family, endpoint, tcp)
        lname = data[12:qend].lower()
        edns = ar
        key = lname + data[qend:end] + _FLAGKEY[edns << 1 | do]
        resp = self.exact.get(key)
        if resp is None:
            resp = self._miss(data, lname, qend, key, edns, do, src, family)
            if resp is None:
                return self._slow(data, src, sport, family, endpoint, tcp)
        x = (data[2] & 1) | (data[3] & 0x10)
        if tcp:
            limit = 65535
        elif edns:
            limit = bufsize if bufsize > 512 else 512
            if limit > self.payload:
                limit = self.payload
        else:
            limit = 512
        if resp.size <= limit:
            out = data[:2] + resp.flags[x] + resp.counts + data[12:qend] + resp.tail
            tail = resp.log_full
        else:
            out = (
                data[:2]
                + resp.tc_flags[x]
                + resp.tc_counts
                + data[12:qend]
                + resp.tc_tail
            )
            tail = resp.log_tc
        if self.querylog is not None:
            self._log(
                data, src, sport, endpoint, qend, lname, edns, bufsize, do, opts, tail
            )
        return out

    def _miss(
        self,
        data: bytes,
        lname: bytes,
        qend: int,
        key: bytes,
        edns: int,
        do: int,
        src: str,
        family: int,
    ) -> Resp | None:
        qtype = data[qend] << 8 | data[qend + 1]
        if data[qend + 2 : qend + 4] != b"\x00\x01" or qtype in _META:
            return None  # other classes and meta types: the slow path decides
        offs = label_offsets(lname)
        res = resolve(self.served, lname, offs, qtype, family, bool(do))
        tkey = (res, qtype, edns << 1 | do, qend)
        entry = self.templates.get(tkey)
        if type(entry) is Resp:
            # Not copied into ``exact``: names that share a template are
            # mostly unique probe names, which would only churn that cache.
            self.shared += 1
            return entry
        if entry is not None:
            assert isinstance(entry, dict)
            hit = entry.get(src)
            if hit is not None:
                self.shared += 1
                return hit
        self.rendered += 1
        rendered = render(
            res,
            template_name(res, lname, offs),
            qtype,
            bool(do),
            bool(edns),
            src,
            family,
            self.payload,
        )
        resp = Resp(rendered, qend, bool(edns), bool(do))
        if len(self.templates) >= CACHE_LIMIT:
            self.templates.clear()
        if rendered.per_source:
            per: dict[str, Resp] = entry if isinstance(entry, dict) else {}
            if len(per) >= 4096:
                per.clear()
            per[src] = resp
            self.templates[tkey] = per
        else:
            self.templates[tkey] = resp
            if len(self.exact) >= CACHE_LIMIT:
                self.exact.clear()
            self.exact[key] = resp
        return resp

    def _log(
        self,
        data: bytes,
        src: str,
        sport: int,
        endpoint: Endpoint,
        qend: int,
        lname: bytes,
        edns: int,
        bufsize: int,
        do: int,
        opts: list[int] | None,
        tail: str,
    ) -> None:
        """Append the log line; its constant fragments come from small caches."""
        assert self.querylog is not None
        raw = data[12:qend]
        qtext = self.qtext.get(raw)
        if qtext is None:
            if len(self.qtext) >= CACHE_LIMIT:
                self.qtext.clear()
            qtext = self.qtext[raw] = ql.name_json(raw)
        qfrag = self._qfrag.get(data[qend : qend + 4])
        if qfrag is None:
            qtype = data[qend] << 8 | data[qend + 1]
            qclass = data[qend + 2] << 8 | data[qend + 3]
            qfrag = self._qfrag[data[qend : qend + 4]] = (
                f'"qtype": "{ql.type_text(qtype)}", '
                f'"qclass": "{ql.class_text(qclass)}", "opcode": "QUERY", '
            )
        if edns:
            efrag = self._efrag.get(bufsize << 1 | do)
            if efrag is None:
                efrag = self._efrag[bufsize << 1 | do] = (
                    f'"edns": 0, "bufsize": {bufsize}, "do": {_BOOL[do]}, '
                )
        else:
            efrag = _NO_EDNS
        if opts:
            ekt = "null"
            if 14 in opts:
                ekt = json.dumps(_key_tags(data, qend + 15))
            ofrag = f'"opts": [{", ".join(map(str, opts))}], "edns_key_tag": {ekt}, '
        else:
            ofrag = _NO_OPTS
        ta = "null"
        if lname[1:5] == b"_ta-":
            tags = ql.ta_tags(lname)
            if tags is not None:
                ta = json.dumps(tags)
        self.querylog.pending.append(
            f'{{"time": "{self.clock.stamp(time.time())}", {endpoint.head}{src}", '
            f'"sport": {sport}{endpoint.mid}"id": {data[0] << 8 | data[1]}, '
            f'"qname": {qtext}, {qfrag}{_RDCD[(data[2] & 1) | (data[3] & 0x10)]}'
            f'{efrag}{ofrag}"ta": {ta}, {tail}}}\n'
        )

    # -- everything else ----------------------------------------------------

    def _slow(
        self,
        data: bytes,
        src: str,
        sport: int,
        family: int,
        endpoint: Endpoint,
        tcp: bool,
    ) -> bytes | None:
        """Parse with dnspython; answer, refuse, FORMERR or drop (and count)."""
        self.counters["slow"] += 1
        if len(data) < 12:
            self._drop(data, src, sport, endpoint, "short header")
            return None
        _qid, flags = struct.unpack_from("!HH", data)
        if flags & dns.flags.QR:
            # Never answer a response: that is how reflection loops start.
            self._drop(data, src, sport, endpoint, "response")
            return None
        opcode = (flags >> 11) & 0xF
        try:
            query = dns.message.from_wire(data, ignore_trailing=False)
        except dns.message.UnknownTSIGKey:
            return self._error(
                data, src, sport, endpoint, tcp, dns.rcode.NOTAUTH, "tsig"
            )
        except (
            dns.exception.DNSException,
            ValueError,
            IndexError,
            struct.error,
        ) as exc:
            if opcode != dns.opcode.QUERY:
                return self._error(
                    data, src, sport, endpoint, tcp, dns.rcode.NOTIMP, None
                )
            reason = _reason(exc)
            return self._error(
                data, src, sport, endpoint, tcp, dns.rcode.FORMERR, reason
            )
        if query.opcode() != dns.opcode.QUERY:
            return self._answer(
                query, data, src, sport, endpoint, tcp, dns.rcode.NOTIMP
            )
        if len(query.question) != 1:
            return self._error(
                data, src, sport, endpoint, tcp, dns.rcode.FORMERR, "question count"
            )
        if query.answer or query.authority:
            return self._error(
                data, src, sport, endpoint, tcp, dns.rcode.FORMERR, "records in query"
            )
        if query.edns > 0:
            # RFC 6891 §6.1.3: BADVERS, answered with our version (0).
            return self._answer(
                query, data, src, sport, endpoint, tcp, dns.rcode.BADVERS
            )
        question = query.question[0]
        qtype, qclass = question.rdtype, question.rdclass
        if qtype in (dns.rdatatype.OPT, dns.rdatatype.TSIG, dns.rdatatype.TKEY, 0):
            return self._error(
                data, src, sport, endpoint, tcp, dns.rcode.FORMERR, "meta type"
            )
        if qtype in (dns.rdatatype.MAILA, dns.rdatatype.MAILB):
            return self._answer(
                query, data, src, sport, endpoint, tcp, dns.rcode.NOTIMP
            )
        if (
            qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR)
            or qclass != dns.rdataclass.IN
        ):
            # No zone transfers; no CHAOS or other classes (NSD-like REFUSED).
            return self._answer(
                query, data, src, sport, endpoint, tcp, dns.rcode.REFUSED
            )
        lname = question.name.canonicalize().to_wire() or b""
        do = bool(query.ednsflags & dns.flags.DO) if query.edns == 0 else False
        res = resolve(self.served, lname, label_offsets(lname), qtype, family, do)
        rendered = render(
            res, question.name, qtype, do, query.edns == 0, src, family, self.payload
        )
        wire = bytearray(rendered.wire)
        wire[0:2] = data[0:2]
        wire[2] |= data[2] & 0x01
        wire[3] |= data[3] & 0x10
        limit = (
            65535
            if tcp
            else (
                max(min(query.payload, self.payload), 512) if query.edns == 0 else 512
            )
        )
        tc = False
        if len(wire) > limit:
            tc = True
            trunc = dns.message.make_response(query)
            trunc.flags |= dns.flags.TC | dns.flags.AA
            trunc.set_rcode(dns.rcode.Rcode.make(rendered.rcode))
            if query.edns == 0:
                trunc.use_edns(0, query.ednsflags & dns.flags.DO, self.payload)
            wire = bytearray(trunc.to_wire())
        self._log_parsed(
            query,
            data,
            src,
            sport,
            endpoint,
            rendered.rcode,
            len(wire),
            tc,
            rendered.zone,
        )
        return bytes(wire)

    def _answer(
        self,
        query: dns.message.Message,
        data: bytes,
        src: str,
        sport: int,
        endpoint: Endpoint,
        tcp: bool,
        rcode: int,
    ) -> bytes:
        """A header-and-question response with ``rcode`` (NOTIMP, REFUSED, BADVERS)."""
        response = dns.message.make_response(query, our_payload=self.payload)
        response.flags &= ~dns.flags.AA
        if query.edns >= 0:
            response.use_edns(0, query.ednsflags & dns.flags.DO, self.payload)
        response.set_rcode(dns.rcode.Rcode.make(rcode))
        wire = response.to_wire()
        self.counters[dns.rcode.to_text(rcode)] += 1  # type: ignore[arg-type]
        self._log_parsed(
            query, data, src, sport, endpoint, rcode, len(wire), False, None
        )
        return wire

    def _error(
        self,
        data: bytes,
        src: str,
        sport: int,
        endpoint: Endpoint,
        tcp: bool,
        rcode: int,
        reason: str | None,
    ) -> bytes:
        """A bare header response (no question: it may not parse) with ``rcode``."""
        qid, flags = struct.unpack_from("!HH", data)
        # QR, the query's opcode and RD; AA clear; counts zero (RFC 1035 §4.1.1).
        out_flags = 0x8000 | (flags & 0x7900) | (rcode & 0xF)
        wire = struct.pack("!HHHHHH", qid, out_flags, 0, 0, 0, 0)
        if rcode == dns.rcode.FORMERR and reason:
            self.formerr[reason] += 1
        self._log_raw(data, src, sport, endpoint, rcode, len(wire), None)
        return wire

    def _drop(
        self, data: bytes, src: str, sport: int, endpoint: Endpoint, reason: str
    ) -> None:
        self.drops[reason] += 1
        self._log_raw(data, src, sport, endpoint, None, 0, reason)

    def _log_raw(
        self,
        data: bytes,
        src: str,
        sport: int,
        endpoint: Endpoint,
        rcode: int | None,
        size: int,
        drop: str | None,
    ) -> None:
        """A line for a packet we could not parse: only header facts, if any."""
        if self.querylog is None:
            return
        header = len(data) >= 12
        flags = struct.unpack_from("!H", data, 2)[0] if header else 0
        record: dict[str, object] = {
            **self._origin(endpoint, src, sport),
            "id": struct.unpack_from("!H", data)[0] if header else None,
            "qname": None,
            "qtype": None,
            "qclass": None,
            "opcode": dns.opcode.to_text((flags >> 11) & 0xF) if header else None,  # type: ignore[arg-type]
            "rd": bool(flags & 0x0100) if header else None,
            "cd": bool(flags & 0x0010) if header else None,
            "edns": None,
            "bufsize": None,
            "do": False,
            "opts": [],
            "edns_key_tag": None,
            "ta": None,
        }
        line = json.dumps(record)[:-1] + ", " + ql.tail(rcode, size, False, None)
        if drop is not None:
            line += f', "drop": {json.dumps(drop)}'
        self.querylog.add(line + "}\n")

    def _origin(self, endpoint: Endpoint, src: str, sport: int) -> dict[str, object]:
        """The query log's leading fields, in contract order: when, how, who, where."""
        return {
            "time": self.clock.stamp(time.time()),
            "transport": endpoint.transport,
            "src": src,
            "sport": sport,
            "dst": endpoint.host,
            "dport": endpoint.port,
        }

    def _log_parsed(
        self,
        query: dns.message.Message,
        data: bytes,
        src: str,
        sport: int,
        endpoint: Endpoint,
        rcode: int,
        size: int,
        tc: bool,
        zone: str | None,
    ) -> None:
        if self.querylog is None:
            return
        question = query.question[0] if query.question else None
        codes = [int(o.otype) for o in query.options] if query.edns >= 0 else []
        ekt = None
        for option in query.options if query.edns >= 0 else ():
            if int(option.otype) == 14:
                raw = option.to_wire() or b""
                ekt = [v for (v,) in struct.iter_unpack("!H", raw[: len(raw) // 2 * 2])]
        ta = None
        if question is not None:
            lname = question.name.canonicalize().to_wire() or b""
            ta = ql.ta_tags(lname)
        qname = None
        if question is not None:
            qname = ql.name_text(question.name.to_wire() or b"")
        record: dict[str, object] = {
            **self._origin(endpoint, src, sport),
            "id": query.id,
            "qname": qname,
            "qtype": ql.type_text(question.rdtype) if question is not None else None,
            "qclass": ql.class_text(question.rdclass) if question is not None else None,
            "opcode": dns.opcode.to_text(query.opcode()),
            "rd": bool(query.flags & dns.flags.RD),
            "cd": bool(query.flags & dns.flags.CD),
            "edns": query.edns if query.edns >= 0 else None,
            "bufsize": query.payload if query.edns >= 0 else None,
            "do": bool(query.ednsflags & dns.flags.DO) if query.edns >= 0 else False,
            "opts": codes,
            "edns_key_tag": ekt,
            "ta": ta,
        }
        line = json.dumps(record)[:-1] + ", " + ql.tail(rcode, size, tc, zone)
        self.querylog.add(line + "}\n")


def _key_tags(data: bytes, at: int) -> list[int]:
    """Values of every edns-key-tag option (14) in the OPT RDATA at ``at``."""
    tags: list[int] = []
    n = len(data)
    while at + 4 <= n:
        code = data[at] << 8 | data[at + 1]
        length = data[at + 2] << 8 | data[at + 3]
        if code == 14:
            # RFC 8145 §4.1: a list of 16-bit key tags.
            body = data[at + 4 : at + 4 + length]
            tags.extend(
                v for (v,) in struct.iter_unpack("!H", body[: len(body) // 2 * 2])
            )
        at += 4 + length
    return tags


def _reason(exc: BaseException) -> str:
    """A short, stable reason for a query that does not parse."""
    name = type(exc).__name__
    return {
        "ShortHeader": "short header",
        "TrailingJunk": "trailing data",
        "BadPointer": "bad compression pointer",
        "BadLabelType": "bad label type",
        "NameTooLong": "name too long",
        "LabelTooLong": "label too long",
        "FormError": "malformed",
        "BadEDNS": "bad EDNS",
        "MultipleOPT": "multiple OPT",
        "BadTSIG": "bad TSIG",
    }.get(name, "malformed")
