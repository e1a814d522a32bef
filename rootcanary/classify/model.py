"""The classifier's results: frozen records, one layer above observations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rootcanary import names

#: Validation states of a vantage point in a time bucket.
VALIDATION_STATES: tuple[str, ...] = ("secure", "insecure", "bogus", "unknown")
#: RFC 8509 §3 resolver types (the single-resolver test).
TA_STATES: tuple[str, ...] = ("Vnew", "Vold", "Vind", "nonV", "other")
#: Support for one algorithm-matrix zone.
ALGORITHM_STATES: tuple[str, ...] = ("can", "cannot", "broken")
#: Where a vantage point ended up around an event (``--event``).
FUNNEL_CLASSES: tuple[str, ...] = (
    "not-secure-before",
    "unaffected",
    "no-data-after",
    "recovered-within-hour",
    "recovered-later",
    "never-recovered",
)


@dataclass(frozen=True, slots=True)
class VantagePoint:
    """Where a response was seen from: platform, probe or exit id, resolver."""

    platform: str
    probe: str
    resolver: str | None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        numeric = self.probe.isdigit()
        return (
            self.platform,
            0 if numeric else 1,
            int(self.probe) if numeric else 0,
            self.probe,
            self.resolver or "",
        )


@dataclass(frozen=True, slots=True)
class RoleEvidence:
    """The responses of one role (one test name) in one bucket, counted.

    ``servfail`` counts SERVFAILs that may come from validation; a SERVFAIL
    whose EDE codes all name another cause (RFC 8914 §4: blocked, network
    error, no reachable authority, ...) counts as ``other``.
    """

    role: str
    noerror: int
    servfail: int
    other: int
    failed: int
    ad: int
    ede: tuple[int, ...]
    rcodes: tuple[str, ...]

    @property
    def responded(self) -> int:
        return self.noerror + self.servfail + self.other

    @property
    def outcome(self) -> str:
        """``Y`` answer, ``S`` SERVFAIL, ``X`` other rcode, ``M`` mixed, ``-``."""
        kinds = [
            letter
            for letter, count in (
                ("Y", self.noerror),
                ("S", self.servfail),
                ("X", self.other),
            )
            if count
        ]
        if not kinds:
            return "-"
        return kinds[0] if len(kinds) == 1 else "M"

    def summary(self) -> str:
        """``valid=NOERROR+AD`` or ``bogus-sig=SERVFAIL[6]x2`` (evidence text)."""
        parts = "/".join(self.rcodes) if self.rcodes else ""
        if self.failed:
            parts = f"{parts}/no-answer" if parts else "no-answer"
        if self.ad:
            parts += "+AD"
        if self.ede:
            parts += "[" + ",".join(str(c) for c in self.ede) + "]"
        total = self.responded + self.failed
        return f"{self.role}={parts}" + (f"x{total}" if total > 1 else "")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a bucket's validation state rests on."""

    ad_valid: bool | None  # AD on an answer for the valid name; None: no answer
    ad_bogus: bool | None  # AD on an answer for a bogus name; None: no answer
    ede: tuple[int, ...]  # EDE codes of the valid and bogus responses
    responses: tuple[RoleEvidence, ...]  # every role seen, sorted by role


@dataclass(frozen=True, slots=True)
class TrustAnchorState:
    """RFC 8509 §3 for one key tag; ``state`` None while a query is missing."""

    keytag: int
    state: str | None
    pattern: str  # outcomes of is-ta, not-ta, bogus: "YSS" is Vnew


@dataclass(frozen=True, slots=True)
class AnchorSet:
    """Trust anchors inferred from the sentinel states of the key tags."""

    holds: tuple[int, ...]  # Vnew: the key is an active trust anchor
    lacks: tuple[int, ...]  # Vold: the key is not (yet) trusted
    undetermined: tuple[int, ...]  # Vind, nonV, other, or not measured

    def describe(self) -> str:
        parts = []
        if self.holds:
            parts.append("holds " + ",".join(map(str, self.holds)))
        if self.lacks:
            parts.append("not " + ",".join(map(str, self.lacks)))
        return "; ".join(parts) if parts else "-"


@dataclass(frozen=True, slots=True)
class AlgorithmSupport:
    """Support for one algorithm-matrix zone (``d2a13n1``)."""

    zone: str
    state: str | None  # can, cannot, broken; None without both answers

    @property
    def parts(self) -> tuple[int, int, int] | None:
        """(DS digest type, DNSKEY algorithm, 1 NSEC / 3 NSEC3)."""
        return names.parse_matrix_label(self.zone)


@dataclass(frozen=True, slots=True)
class BucketState:
    """One vantage point in one time bucket: the classifier's unit of output."""

    vantage: VantagePoint
    start: datetime
    validation: str
    evidence: Evidence
    flags: tuple[str, ...]
    trust_anchors: tuple[TrustAnchorState, ...]
    anchor_set: AnchorSet
    algorithms: tuple[AlgorithmSupport, ...]
    upstream: tuple[str, ...]  # whoami: resolvers our server saw (whole input)
    phase: str | None = None  # before, during or after the event


@dataclass(frozen=True, slots=True)
class Transition:
    """A vantage point around the event."""

    vantage: VantagePoint
    before: str | None  # last known validation state before the event
    after: str | None  # last known validation state after it
    funnel: str  # one of FUNNEL_CLASSES
    failed_at: datetime | None  # first bogus/insecure bucket after the event
    recovered_at: datetime | None  # first secure bucket after that
    recovery_seconds: int | None


@dataclass(frozen=True, slots=True)
class Funnel:
    """The rollover funnel (after the IMC 2019 study of the 2018 KSK roll)."""

    event: datetime
    vantage_points: int
    secure_before: int
    affected: int  # secure before, bogus or insecure after
    recovered_within_hour: int
    recovered_later: int
    median_recovery_seconds: float | None  # of those recovered later
    never_recovered: int


@dataclass(frozen=True, slots=True)
class Classification:
    """Everything ``classify`` found; sorted, so equal input gives equal output."""

    buckets: tuple[BucketState, ...]  # by vantage point, then time
    keytags: tuple[int, ...]
    bucket_seconds: int
    responses: int  # responses (and failed attempts) with a usable role
    unusable: tuple[tuple[str, int], ...]  # responses left out, by reason
    event: datetime | None = None
    transitions: tuple[Transition, ...] = ()
    funnel: Funnel | None = None

    @property
    def vantage_points(self) -> tuple[VantagePoint, ...]:
        return tuple(dict.fromkeys(bucket.vantage for bucket in self.buckets))

    def latest(self) -> dict[VantagePoint, BucketState]:
        """Per vantage point its last bucket with a known validation state,
        else its last bucket."""
        out: dict[VantagePoint, BucketState] = {}
        for bucket in self.buckets:
            known = out.get(bucket.vantage)
            if (
                known is None
                or bucket.validation != "unknown"
                or known.validation == "unknown"
            ):
                out[bucket.vantage] = bucket
        return out
