"""RIPE Atlas DNS results, as the results API returns them, to observations.

A result holds either one ``result`` (the probe asked one server) or a
``resultset`` with one entry per resolver of the probe (``use_probe_resolver``),
each with its own ``dst_addr``, ``time`` and ``result`` or ``error``
(``{"timeout": 5000}``, ``{"socket": ...}``; see the Atlas note §1.5). Every
entry becomes one observation: a response (rcode, AD, answers, EDE) or a
failed attempt (``rcode`` None, ``error`` set).

The fields are read from the JSON and the abuf directly rather than through
ripe.atlas.sagan, which is about ten times slower here and hides two things we
need: per-resolver errors inside a resultset (its ``is_error`` stays False)
and EDE options (left undecoded). A differential test keeps the two in
agreement on real results.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rootcanary.observation import Observation, Tally
from rootcanary.readers import wire
from rootcanary.readers.lines import Where, describe

NOT_DNS = "not a DNS result"
BAD_ENTRY = "resultset entry without result or error"
BAD_TIME = "result without a usable time"
BAD_ABUF = "undecodable abuf"
NO_ABUF = "no abuf in result (measurement made without include_abuf)"


class Entry(NamedTuple):
    """One attempt of one probe at one resolver, before the abuf is decoded."""

    measurement: int
    probe: int
    resolver: str | None
    af: int | None
    when: float
    abuf: str | None
    error: str | None
    qbuf: str | None
    proto: str | None
    rt: float | None


def is_atlas_result(value: dict[str, Any]) -> bool:
    """True for anything that looks like an Atlas result (maybe not DNS)."""
    return "prb_id" in value or "msm_id" in value


def entries(result: dict[str, Any], where: Where, tally: Tally) -> Iterator[Entry]:
    """The attempts in one raw result; malformed parts are counted, not raised.

    :meth:`rootcanary.classify.Classifier.add_atlas` inlines these same rules
    for speed; a test keeps the two in step.
    """
    msm, prb = result.get("msm_id"), result.get("prb_id")
    if (
        type(msm) is not int
        or type(prb) is not int
        or result.get("type", "dns") != "dns"
    ):
        tally.skip(NOT_DNS, describe(where))
        return
    items = result.get("resultset")
    if items is None:
        if "result" not in result and "error" not in result and "err" not in result:
            tally.skip(NOT_DNS, describe(where))
            return
        items = (result,)
    elif type(items) is not list:
        tally.skip(NOT_DNS, describe(where))
        return
    top_time = result.get("timestamp")
    top_af = result.get("af")
    top_dst = result.get("dst_addr") or result.get("dst_name")
    top_proto = result.get("proto")
    for item in items:
        if type(item) is not dict:
            tally.skip(BAD_ENTRY, describe(where))
            continue
        when = item.get("time", top_time)
        if type(when) is not int and type(when) is not float:
            tally.skip(BAD_TIME, describe(where))
            continue
        error = item.get("error") or item.get("err")
        abuf = rt = None
        if error is None:
            res = item.get("result")
            if type(res) is not dict:
                tally.skip(BAD_ENTRY, describe(where))
                continue
            abuf = res.get("abuf")
            if type(abuf) is not str:
                abuf, error = None, NO_ABUF
            rt = res.get("rt")
        yield Entry(
            msm,
            prb,
            item.get("dst_addr") or top_dst,
            item.get("af", top_af),
            float(when),
            abuf,
            None if error is None else error_text(error),
            item.get("qbuf") or result.get("qbuf"),
            item.get("proto", top_proto),
            rt if type(rt) is float or type(rt) is int else None,
        )


def error_text(error: Any) -> str:
    """``{"timeout": 5000}`` as ``timeout: 5000``; other shapes as their text."""
    if isinstance(error, dict):
        return "; ".join(f"{key}: {value}" for key, value in error.items())
    return str(error)


def decode_abuf(text: str) -> bytes:
    """The abuf's bytes; raises ValueError when it is not strict base64."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"abuf is not base64: {exc}") from None


def query_question(entry: Entry) -> tuple[str, str]:
    """(qname, qtype) from the query buffer, when the probe kept it."""
    if not entry.qbuf:
        return "", ""
    try:
        packet = decode_abuf(entry.qbuf)
        return wire.question(packet, wire.scan(packet))
    except (ValueError, IndexError):
        return "", ""


def observation(entry: Entry, where: Where, tally: Tally) -> Observation | None:
    """The observation of one attempt, or None (counted) for a bad abuf."""
    extra: dict[str, Any] = {}
    if entry.proto:
        extra["proto"] = entry.proto
    if entry.rt is not None:
        extra["rt"] = entry.rt
    rcode = ad = None
    answers: tuple[str, ...] = ()
    ede: tuple[int, ...] = ()
    if entry.abuf is not None:
        try:
            packet = decode_abuf(entry.abuf)
            found = wire.scan(packet)
        except ValueError as exc:
            tally.skip(BAD_ABUF, f"{describe(where)}: {exc}")
            return None
        # The header and the record layout are sound; a name that points
        # nowhere leaves the question or the answers empty, not the response.
        try:
            qname, qtype = wire.question(packet, found)
        except (ValueError, IndexError) as exc:
            qname, qtype = "", ""
            extra["decode_error"] = f"question: {exc}"
        try:
            answers = wire.answer_texts(packet, found)
        except (ValueError, IndexError) as exc:
            extra["decode_error"] = f"answers: {exc}"
        if not qname:
            qname, qtype = query_question(entry)
        rcode, ad, ede = found.rcode_text, found.ad, found.ede
        extra["tc"] = found.tc
        if any(found.ede_text):
            extra["ede_text"] = list(found.ede_text)
    else:
        qname, qtype = query_question(entry)
    return Observation(
        platform="atlas",
        measurement=entry.measurement,
        probe=entry.probe,
        resolver=entry.resolver,
        af=entry.af if entry.af in (4, 6) else None,
        time=datetime.fromtimestamp(entry.when, UTC),
        qname=qname,
        qtype=qtype,
        rcode=rcode,
        ad=ad,
        answers=answers,
        ede=ede,
        error=entry.error,
        extra=extra,
    )


def observations(
    result: dict[str, Any], where: Where, tally: Tally
) -> Iterator[Observation]:
    """Every observation of one raw result, counting what cannot be read."""
    for entry in entries(result, where, tally):
        found = observation(entry, where, tally)
        if found is not None:
            tally.ok()
            yield found
