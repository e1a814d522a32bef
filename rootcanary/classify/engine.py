"""The streaming classifier: count responses per cell, decide at the end.

A cell is one vantage point in one time bucket. Its state is a flat array of
seven unsigned counters per role (answers, SERVFAILs, other rcodes, failed
attempts, AD answers, and bit masks of EDE codes and rcodes below 32), so
memory grows with vantage points times buckets and never with the number of
responses. Nothing depends on the order responses arrive in: the same input
in any order gives the same :class:`Classification`.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
from array import array
from binascii import Error as BinasciiError
from binascii import a2b_base64
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rootcanary import names
from rootcanary.classify import rules
from rootcanary.classify.model import (
    AlgorithmSupport,
    AnchorSet,
    BucketState,
    Classification,
    Evidence,
    Funnel,
    RoleEvidence,
    Transition,
    TrustAnchorState,
    VantagePoint,
)
from rootcanary.classify.roles import RoleMap, upstream_addresses
from rootcanary.observation import Observation, Tally
from rootcanary.readers import atlas, wire
from rootcanary.readers.lines import Where, describe, values
from rootcanary.readers.sources import NOT_A_RECORD
from rootcanary.readers.wire import summary

_TYPECODE = next(code for code in "ILQ" if array(code).itemsize >= 4)
_SLOTS = 7
_NOERROR, _SERVFAIL, _OTHER, _FAILED, _AD, _EDE, _RCODES = range(_SLOTS)
_VP_BITS = 32
_VP_MASK = (1 << _VP_BITS) - 1
_NEEDS_NAME = -1
_RCODE_VALUE = {text: value for value, text in wire.RCODE_TEXT.items()}
_HOUR = 3600
_FLAG_AD = wire.FLAG_AD

NO_ROLE = "no role: not a test name and no role for its measurement"


def rcode_value(text: str | None) -> int | None:
    """The number of an rcode mnemonic (``NOERROR``, ``RCODE12``, ``12``)."""
    if text is None:
        return None
    upper = text.upper()
    value = _RCODE_VALUE.get(upper)
    if value is not None:
        return value
    digits = upper.removeprefix("RCODE")
    return int(digits) if digits.isdigit() else 4095


class Classifier:
    """Feed observations (or raw Atlas results); then call :meth:`result`."""

    def __init__(
        self,
        *,
        roles: RoleMap | Mapping[str, str] | None = None,
        zone: str | None = None,
        bucket_seconds: int = 3600,
        keytags: Iterable[int] = (),
        event: datetime | None = None,
    ) -> None:
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1")
        if isinstance(roles, RoleMap):
            role_map = roles
            if zone is not None:
                role_map = RoleMap(roles.manifest, roles.options, names.absolute(zone))
        else:
            role_map = RoleMap(
                manifest=dict(roles or {}),
                zone=names.absolute(zone) if zone else None,
            )
        self.roles = role_map
        self.bucket_seconds = int(bucket_seconds)
        self.keytags = tuple(dict.fromkeys(keytags))
        self.event = event.astimezone(UTC) if event is not None else None
        self.responses = 0
        self.unusable: Counter[str] = Counter()
        self._vp_ids: dict[tuple[str, str, str | None], int] = {}
        self._vps: list[VantagePoint] = []
        self._cells: dict[int, array[int]] = {}
        self._rare: dict[tuple[int, int, int], set[int]] = {}
        self._rare_cells: set[int] = set()
        self._role_ids: dict[str, int] = {}
        self._role_names: list[str] = []
        self._blank: array[int] = array(_TYPECODE)
        self._by_measurement: dict[str | int, int] = {}
        self._upstream: dict[int, set[str]] = {}
        self._whoami = -2
        self._whoami_seen: dict[tuple[str, ...], frozenset[str]] = {}

    # -- feeding ----------------------------------------------------------

    def add(self, observation: Observation) -> None:
        """Count one observation."""
        role = self.roles.role(
            observation.role,
            observation.measurement,
            observation.qname,
            observation.qtype,
        )
        if role is None:
            self.unusable[NO_ROLE] += 1
            return
        vp = self._vp(
            observation.platform, str(observation.probe), observation.resolver
        )
        rcode = rcode_value(observation.rcode)
        self._count(
            vp,
            observation.time.timestamp(),
            self._role_id(role),
            rcode,
            1 if observation.ad else 0,
            observation.ede,
        )
        if role == "whoami" and rcode == 0:
            self._upstream.setdefault(vp, set()).update(
                upstream_addresses(observation.answers)
            )

    def add_all(self, observations: Iterable[Observation]) -> None:
        for observation in observations:
            self.add(observation)

    def add_atlas(self, result: dict[str, Any], where: Where, tally: Tally) -> None:
        """Count every attempt in one raw RIPE Atlas result (the fast path).

        The same rules as :func:`rootcanary.readers.atlas.entries`, inlined:
        this loop runs once per response and sets the classifier's speed.
        """
        msm, prb = result.get("msm_id"), result.get("prb_id")
        if (
            type(msm) is not int
            or type(prb) is not int
            or result.get("type", "dns") != "dns"
        ):
            tally.skip(atlas.NOT_DNS, describe(where))
            return
        items = result.get("resultset")
        if items is None:
            if "result" not in result and "error" not in result and "err" not in result:
                tally.skip(atlas.NOT_DNS, describe(where))
                return
            items = (result,)
        elif type(items) is not list:
            tally.skip(atlas.NOT_DNS, describe(where))
            return
        role_id = self._by_measurement.get(msm)
        if role_id is None:
            role = self.roles.by_measurement(msm)
            role_id = self._role_id(role) if role else _NEEDS_NAME
            self._by_measurement[msm] = role_id
        probe = str(prb)
        top_time: Any = result.get("timestamp")
        vp_ids = self._vp_ids
        cells = self._cells
        width = self.bucket_seconds
        whoami = self._whoami
        read = 0
        for item in items:
            if type(item) is not dict:
                tally.skip(atlas.BAD_ENTRY, describe(where))
                continue
            when = item.get("time", top_time)
            kind = type(when)
            if kind is not int and kind is not float:
                tally.skip(atlas.BAD_TIME, describe(where))
                continue
            rcode: int | None = None
            flags = 0
            ede: tuple[int, ...] = ()
            packet = None
            if not (
                ("error" in item or "err" in item)
                and (item.get("error") or item.get("err"))
            ):
                res = item.get("result")
                if type(res) is not dict:
                    tally.skip(atlas.BAD_ENTRY, describe(where))
                    continue
                abuf = res.get("abuf")
                if type(abuf) is str:
                    try:
                        packet = a2b_base64(abuf, strict_mode=True)
                        rcode, flags, ede = summary(packet)
                    except (BinasciiError, ValueError) as exc:
                        tally.skip(atlas.BAD_ABUF, f"{describe(where)}: {exc}")
                        continue
            read += 1
            rid = role_id
            if rid < 0:
                rid = self._role_from_name(result, item, packet)
                whoami = self._whoami  # the name may have made the role
                if rid < 0:
                    continue
            resolver = (
                item.get("dst_addr") or result.get("dst_addr") or result.get("dst_name")
            )
            vp = vp_ids.get(("atlas", probe, resolver))
            if vp is None:
                vp = self._vp("atlas", probe, resolver)
            # Inlined self._count(...): keep the two in step.
            key = (int(when) // width << _VP_BITS) | vp
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = self._blank[:]
            base = rid * _SLOTS
            if base >= len(cell):
                cell.extend([0] * (len(self._blank) - len(cell)))
            if rcode == 0 and not ede:
                cell[base] += 1
                cell[base + _RCODES] |= 1
                if flags & _FLAG_AD:
                    cell[base + _AD] += 1
            else:
                self._tail(key, cell, base, rid, rcode, flags & _FLAG_AD, ede)
            if rid == whoami and rcode == 0:
                assert packet is not None
                self._whoami_answer(vp, packet)
        tally.read += read
        self.responses += read

    def _whoami_answer(self, vp: int, packet: bytes) -> None:
        try:
            rdata = tuple(wire.address_rdata(packet, wire.scan(packet)))
        except (ValueError, IndexError):
            return
        # A resolver's whoami answers repeat: parse each distinct one once.
        found = self._whoami_seen.get(rdata)
        if found is None:
            found = self._whoami_seen[rdata] = frozenset(upstream_addresses(rdata))
        if found:
            self._upstream.setdefault(vp, set()).update(found)

    def add_files(self, files: Iterable[Path], tally: Tally) -> None:
        """Every observation and raw Atlas result in the files.

        The dispatch of :func:`rootcanary.readers.sources.records`, inlined.
        """
        add_atlas = self.add_atlas
        with _cyclic_gc_paused():
            for path in files:
                for where, value in values(path, tally):
                    if type(value) is dict:
                        if "platform" in value:
                            self._add_dict(value, where, tally)
                            continue
                        if "prb_id" in value or "msm_id" in value:
                            add_atlas(value, where, tally)
                            continue
                    tally.skip(NOT_A_RECORD, describe(where))

    def _add_dict(self, value: dict[str, Any], where: Where, tally: Tally) -> None:
        try:
            found = Observation.from_dict(value)
        except (ValueError, TypeError) as exc:
            tally.skip(f"bad observation: {exc}", describe(where))
            return
        tally.ok()
        self.add(found)

    def _role_from_name(
        self, result: dict[str, Any], item: dict[str, Any], packet: bytes | None
    ) -> int:
        qname = qtype = ""
        if packet is not None:
            # summary() has walked the message: the question is sound.
            qname, qtype = wire.first_question(packet)
        if not qname:
            qbuf = item.get("qbuf") or result.get("qbuf")
            if isinstance(qbuf, str):
                try:
                    query = atlas.decode_abuf(qbuf)
                    qname, qtype = wire.question(query, wire.scan(query))
                except (ValueError, IndexError):
                    qname = ""
        role = self.roles.by_name(qname, qtype)
        if role is None:
            self.unusable[NO_ROLE] += 1
            return _NEEDS_NAME
        return self._role_id(role)

    def _vp(self, platform: str, probe: str, resolver: str | None) -> int:
        key = (platform, probe, resolver)
        found = self._vp_ids.get(key)
        if found is None:
            found = self._vp_ids[key] = len(self._vps)
            self._vps.append(VantagePoint(platform, probe, resolver))
        return found

    def _role_id(self, role: str) -> int:
        found = self._role_ids.get(role)
        if found is None:
            found = self._role_ids[role] = len(self._role_names)
            self._role_names.append(role)
            if role == "whoami":
                self._whoami = found
            self._blank = array(_TYPECODE, [0]) * (_SLOTS * len(self._role_names))
        return found

    def _count(
        self,
        vp: int,
        when: float,
        role_id: int,
        rcode: int | None,
        ad: int,
        ede: tuple[int, ...],
    ) -> None:
        self.responses += 1
        key = (int(when) // self.bucket_seconds << _VP_BITS) | vp
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = self._blank[:]
        base = role_id * _SLOTS
        if base >= len(cell):
            cell.extend([0] * (len(self._blank) - len(cell)))
        self._tail(key, cell, base, role_id, rcode, ad, ede)

    def _tail(
        self,
        key: int,
        cell: array[int],
        base: int,
        role_id: int,
        rcode: int | None,
        ad: int,
        ede: tuple[int, ...],
    ) -> None:
        if rcode is None:
            cell[base + _FAILED] += 1
            return
        if rcode == 0:
            cell[base] += 1
            if ad:
                cell[base + _AD] += 1
        elif rcode == 2 and not (ede and rules.NON_VALIDATION_EDE.issuperset(ede)):
            cell[base + _SERVFAIL] += 1
        else:
            cell[base + _OTHER] += 1
        if rcode < 32:
            cell[base + _RCODES] |= 1 << rcode
        else:
            self._rare.setdefault((key, role_id, _RCODES), set()).add(rcode)
            self._rare_cells.add(key)
        for code in ede:
            if code < 32:
                cell[base + _EDE] |= 1 << code
            else:
                self._rare.setdefault((key, role_id, _EDE), set()).add(code)
                self._rare_cells.add(key)

    # -- deciding ---------------------------------------------------------

    def result(self) -> Classification:
        """Decide every cell; the counts stay, so more can be fed later."""
        keytags = self.keytags or self._seen_keytags()
        ranked = sorted(range(len(self._vps)), key=lambda v: self._vps[v].sort_key())
        rank = [0] * len(ranked)
        for position, vp_id in enumerate(ranked):
            rank[vp_id] = position
        order = sorted(self._cells, key=lambda k: (rank[k & _VP_MASK], k >> _VP_BITS))
        decided: dict[bytes, _Decision] = {}
        upstream: dict[int, tuple[str, ...]] = {}
        starts: dict[int, datetime] = {}
        buckets = tuple(
            self._bucket(key, keytags, decided, upstream, starts) for key in order
        )
        transitions: tuple[Transition, ...] = ()
        funnel = None
        if self.event is not None:
            transitions = tuple(_transitions(buckets, self.event, self.bucket_seconds))
            funnel = _funnel(transitions, self.event)
        unusable = dict(self.unusable)
        return Classification(
            buckets=buckets,
            keytags=tuple(keytags),
            bucket_seconds=self.bucket_seconds,
            responses=self.responses,
            unusable=tuple(sorted(unusable.items(), key=lambda kv: (-kv[1], kv[0]))),
            event=self.event,
            transitions=transitions,
            funnel=funnel,
        )

    def _seen_keytags(self) -> tuple[int, ...]:
        tags = set()
        for role in self._role_names:
            parsed = names.parse_sentinel_role(role)
            if parsed:
                tags.add(parsed[1])
        return tuple(sorted(tags))

    def _evidence(self, key: int, cell: array[int]) -> dict[str, RoleEvidence]:
        out = {}
        for role_id, role in enumerate(self._role_names):
            base = role_id * _SLOTS
            if base >= len(cell):
                break
            counts = cell[base : base + _SLOTS]
            if not any(counts[:4]):
                continue
            ede = _bits(counts[_EDE]) | self._rare.get((key, role_id, _EDE), set())
            codes = _bits(counts[_RCODES]) | self._rare.get(
                (key, role_id, _RCODES), set()
            )
            out[role] = RoleEvidence(
                role=role,
                noerror=counts[_NOERROR],
                servfail=counts[_SERVFAIL],
                other=counts[_OTHER],
                failed=counts[_FAILED],
                ad=counts[_AD],
                ede=tuple(sorted(ede)),
                rcodes=tuple(
                    wire.RCODE_TEXT.get(code, f"RCODE{code}") for code in sorted(codes)
                ),
            )
        return dict(sorted(out.items()))

    def _bucket(
        self,
        key: int,
        keytags: tuple[int, ...],
        decided: dict[bytes, _Decision],
        upstream: dict[int, tuple[str, ...]],
        starts: dict[int, datetime],
    ) -> BucketState:
        vp_id = key & _VP_MASK
        number = key >> _VP_BITS
        cell = self._cells[key]
        # Most cells repeat a handful of count patterns: decide each once.
        pattern = cell.tobytes() if key not in self._rare_cells else None
        decision = decided.get(pattern) if pattern is not None else None
        if decision is None:
            decision = self._decide(key, cell, keytags)
            if pattern is not None:
                decided[pattern] = decision
        seen = upstream.get(vp_id)
        if seen is None:
            seen = upstream[vp_id] = tuple(
                sorted(self._upstream.get(vp_id, ()), key=_address_key)
            )
        start = starts.get(number)
        if start is None:
            start = starts[number] = datetime.fromtimestamp(
                number * self.bucket_seconds, UTC
            )
        return BucketState(
            vantage=self._vps[vp_id],
            start=start,
            validation=decision.validation,
            evidence=decision.evidence,
            flags=decision.flags,
            trust_anchors=decision.trust_anchors,
            anchor_set=decision.anchor_set,
            algorithms=decision.algorithms,
            upstream=seen,
            phase=_phase(number * self.bucket_seconds, self.bucket_seconds, self.event),
        )

    def _decide(
        self, key: int, cell: array[int], keytags: tuple[int, ...]
    ) -> _Decision:
        roles = self._evidence(key, cell)
        valid = roles.get("valid")
        bogus = [ev for role, ev in roles.items() if names.is_bogus_role(role)]
        bogus_outcome = rules.combine(bogus)
        validation = rules.validation_state(
            valid.outcome if valid else "-", bogus_outcome
        )
        anchors = tuple(
            rules.trust_anchor_state(
                tag,
                _outcome(roles.get(f"is-ta:{tag}")),
                _outcome(roles.get(f"not-ta:{tag}")),
                bogus_outcome,
            )
            for tag in keytags
        )
        used = [ev for ev in (valid, *bogus) if ev is not None]
        evidence = Evidence(
            ad_valid=bool(valid.ad) if valid is not None and valid.noerror else None,
            ad_bogus=(
                any(ev.ad for ev in bogus) if any(ev.noerror for ev in bogus) else None
            ),
            ede=tuple(sorted({code for ev in used for code in ev.ede})),
            responses=tuple(roles.values()),
        )
        return _Decision(
            validation=validation,
            evidence=evidence,
            flags=rules.flags(roles, validation),
            trust_anchors=anchors,
            anchor_set=rules.anchor_set(anchors, keytags),
            algorithms=_algorithms(roles),
        )


@dataclass(frozen=True, slots=True)
class _Decision:
    """The part of a bucket's state that follows from its counts alone."""

    validation: str
    evidence: Evidence
    flags: tuple[str, ...]
    trust_anchors: tuple[TrustAnchorState, ...]
    anchor_set: AnchorSet
    algorithms: tuple[AlgorithmSupport, ...]


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is classified.

    The loop allocates millions of short-lived, acyclic objects (the parsed
    JSON of each result) that reference counting frees at once; the cyclic
    collector would only rescan them, at about a tenth of the run time. It is
    switched back on afterwards, also on error, if it was on before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _outcome(evidence: RoleEvidence | None) -> str:
    return evidence.outcome if evidence is not None else "-"


def _bits(mask: int) -> set[int]:
    out = set()
    while mask:
        low = mask & -mask
        out.add(low.bit_length() - 1)
        mask ^= low
    return out


def _address_key(address: str) -> tuple[int, str]:
    return (6 if ":" in address else 4, address)


def _algorithms(roles: Mapping[str, RoleEvidence]) -> tuple[AlgorithmSupport, ...]:
    zones: dict[str, dict[str, list[RoleEvidence]]] = {}
    for role, ev in roles.items():
        if role.startswith("alg:"):
            _, zone, leaf = role.split(":", 2)
            kind = "valid" if leaf == "valid" else "bogus"
            zones.setdefault(zone, {}).setdefault(kind, []).append(ev)
    out = []
    for zone in sorted(zones):
        valid = zones[zone].get("valid", [])
        out.append(
            rules.algorithm_support(
                zone,
                valid[0].outcome if valid else "-",
                rules.combine(zones[zone].get("bogus", [])),
            )
        )
    return tuple(out)


def _phase(start: int, width: int, event: datetime | None) -> str | None:
    if event is None:
        return None
    moment = event.timestamp()
    if start + width <= moment:
        return "before"
    if start >= moment:
        return "after"
    return "during"


def _transitions(
    buckets: Iterable[BucketState], event: datetime, width: int
) -> Iterator[Transition]:
    by_vp: dict[VantagePoint, list[BucketState]] = {}
    for bucket in buckets:
        by_vp.setdefault(bucket.vantage, []).append(bucket)
    for vantage, series in by_vp.items():
        known = [b for b in series if b.validation != "unknown"]
        before = [b for b in known if b.phase == "before"]
        after = [b for b in known if b.phase == "after"]
        failed_at = recovered_at = None
        seconds = None
        if not before or any(b.validation != "secure" for b in before):
            funnel = "not-secure-before"
        elif not after:
            funnel = "no-data-after"
        else:
            bad = next((b for b in after if b.validation != "secure"), None)
            if bad is None:
                funnel = "unaffected"
            else:
                failed_at = bad.start
                good = next(
                    (
                        b
                        for b in after
                        if b.start > bad.start and b.validation == "secure"
                    ),
                    None,
                )
                if good is None:
                    funnel = "never-recovered"
                else:
                    recovered_at = good.start
                    seconds = int((good.start - bad.start).total_seconds())
                    funnel = (
                        "recovered-within-hour"
                        if seconds <= _HOUR
                        else "recovered-later"
                    )
        yield Transition(
            vantage=vantage,
            before=before[-1].validation if before else None,
            after=after[-1].validation if after else None,
            funnel=funnel,
            failed_at=failed_at,
            recovered_at=recovered_at,
            recovery_seconds=seconds,
        )


def _funnel(transitions: tuple[Transition, ...], event: datetime) -> Funnel:
    count = Counter(t.funnel for t in transitions)
    later = [
        t.recovery_seconds
        for t in transitions
        if t.funnel == "recovered-later" and t.recovery_seconds is not None
    ]
    affected = sum(
        count[c]
        for c in ("recovered-within-hour", "recovered-later", "never-recovered")
    )
    return Funnel(
        event=event,
        vantage_points=len(transitions),
        secure_before=len(transitions) - count["not-secure-before"],
        affected=affected,
        recovered_within_hour=count["recovered-within-hour"],
        recovered_later=count["recovered-later"],
        median_recovery_seconds=float(statistics.median(later)) if later else None,
        never_recovered=count["never-recovered"],
    )


def classify(
    observations: Iterable[Observation],
    *,
    roles: RoleMap | Mapping[str, str] | None = None,
    zone: str | None = None,
    bucket_seconds: int = 3600,
    keytags: Iterable[int] = (),
    event: datetime | None = None,
) -> Classification:
    """Classify observations in one pass (see the package docstring)."""
    classifier = Classifier(
        roles=roles,
        zone=zone,
        bucket_seconds=bucket_seconds,
        keytags=keytags,
        event=event,
    )
    classifier.add_all(observations)
    return classifier.result()


def classify_files(
    files: Iterable[Path],
    tally: Tally,
    *,
    roles: RoleMap | Mapping[str, str] | None = None,
    zone: str | None = None,
    bucket_seconds: int = 3600,
    keytags: Iterable[int] = (),
    event: datetime | None = None,
) -> Classification:
    """Classify observation files and raw Atlas results, streaming."""
    classifier = Classifier(
        roles=roles,
        zone=zone,
        bucket_seconds=bucket_seconds,
        keytags=keytags,
        event=event,
    )
    classifier.add_files(files, tally)
    return classifier.result()
