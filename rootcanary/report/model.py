"""The report's records: what was found in a campaign or replay run directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rootcanary.classify import Classification
from rootcanary.observation import Tally
from rootcanary.telemetry import Telemetry

#: What a directory is: a rollover replay's run, or a campaign of a backend
#: ("atlas", "local", "proxy", any other backend name), or loose data files.
REPLAY = "replay"
FILES = "files"


@dataclass(frozen=True, slots=True)
class Event:
    """A moment marked on every plot: a replay phase, a restart, ``--event``."""

    time: datetime
    label: str
    kind: str  # "phase", "restart" or "event"


@dataclass(frozen=True, slots=True)
class Phase:
    """One root state of the replay's timeline (``start``, ``publish``, ...)."""

    state: str
    at: datetime
    offset: float | None


@dataclass(frozen=True, slots=True)
class Restart:
    resolver: str
    at: datetime
    offset: float | None


@dataclass(frozen=True, slots=True)
class Key:
    """A root KSK of the replay: ``old`` or ``new``, its slot and key tags."""

    role: str
    slot: str | None
    tag: int | None
    revoked_tag: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One resolver's outcome of the replay (``replay.json`` ``verdicts``)."""

    resolver: str
    implementation: str | None
    variant: str | None
    address: str | None
    expected: str | None  # "survives" or "breaks"
    outcome: str | None  # "survived" or "broke"
    ok: bool | None  # outcome matches expected
    trusted_new_at: datetime | None
    secure_through_roll: bool | None
    first_bogus_at: datetime | None
    dropped_revoked_at: datetime | None
    notes: str


@dataclass(frozen=True, slots=True)
class KeytagSet:
    """A change of one source's RFC 8145 key-tag set, as the replay saw it."""

    src: str
    time: datetime
    tags: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DnskeyRate:
    """``. DNSKEY`` queries of one source during one phase."""

    src: str
    phase: str
    queries: int
    seconds: float | None
    per_minute: float | None


@dataclass(frozen=True)
class Replay:
    """The replay's summary, ``replay.json`` (contract: briefs/replay.md)."""

    schema_version: object
    scenario_name: str | None
    scenario_path: str | None
    scenario_text: str | None
    started: datetime | None
    finished: datetime | None
    parameters: tuple[tuple[str, str], ...]  # in the file's order, values as text
    keys: tuple[Key, ...]
    phases: tuple[Phase, ...]
    restarts: tuple[Restart, ...]
    verdicts: tuple[Verdict, ...]
    keytag_sets: tuple[KeytagSet, ...]
    dnskey_rates: tuple[DnskeyRate, ...]

    def parameter(self, name: str) -> str | None:
        return next((v for k, v in self.parameters if k == name), None)

    def key(self, role: str) -> Key | None:
        return next((k for k in self.keys if k.role == role), None)


@dataclass(frozen=True)
class CampaignInfo:
    """What the campaign manifest says (nothing secret is ever in it)."""

    directory: Path
    name: str
    backend: str
    created: str
    scenario_path: str | None
    scenario_text: str | None
    zone: str | None
    measurements: int  # roles known from the manifest
    entries: int  # backend entries (measurements created, local runs, ...)


@dataclass(frozen=True)
class DnskeySeries:
    """``. DNSKEY`` queries per source and time bucket, from the query log."""

    bucket_seconds: int
    sources: tuple[str, ...]  # most queries first, then by address
    totals: tuple[int, ...]  # per source, all buckets
    counts: tuple[tuple[tuple[int, int], ...], ...]  # per source: (start, count)

    @property
    def queries(self) -> int:
        return sum(self.totals)


@dataclass(frozen=True)
class HeldSeries:
    """Per bucket, how many sources' latest RFC 8145 signal held each key tag.

    A source counts from its first signal on, with the set it signalled last
    (RFC 8145 §4 and §5.1: a validator signals with its periodic DNSKEY
    fetches, so between two signals it holds what it said last).
    """

    bucket_seconds: int
    keytags: tuple[int, ...]
    starts: tuple[int, ...]  # epoch seconds, ascending
    holders: tuple[tuple[int, ...], ...]  # [key tag][bucket]
    sources: tuple[int, ...]  # [bucket] sources whose latest signal held any


@dataclass(frozen=True)
class QueryLog:
    """What the server's query log(s) hold for the report."""

    files: tuple[Path, ...]
    lines: int  # records read (each query, answered or dropped)
    first: datetime | None
    last: datetime | None
    dnskey: DnskeySeries
    per_day: Telemetry  # RFC 8145 signals per UTC day
    held: HeldSeries | None  # None when the log had too many sources for it


@dataclass(frozen=True, slots=True)
class InputCount:
    """Records read and skipped (by reason, with the first place) of one input."""

    noun: str
    read: int
    skipped: tuple[tuple[str, int, str], ...]  # reason, count, first place

    @classmethod
    def of(cls, noun: str, tally: Tally) -> InputCount:
        ranked = sorted(tally.skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls(
            noun,
            tally.read,
            tuple((r, c, tally.examples.get(r, "")) for r, c in ranked),
        )

    @property
    def total_skipped(self) -> int:
        return sum(count for _, count, _ in self.skipped)


@dataclass(frozen=True)
class ReportOptions:
    """How to build the report; every field has the CLI's default."""

    bucket_seconds: int | None = None  # None: from the replay, else an hour
    events: tuple[datetime, ...] = ()  # marked; the first anchors the funnel
    keytags: tuple[int, ...] = ()  # default: the replay's or campaign's
    zone: str | None = None  # test zone, when no manifest names one
    query_logs: tuple[Path, ...] = ()  # more query logs beyond the directory's


@dataclass(frozen=True)
class Report:
    """Everything one report shows, built by :func:`~.build.build_report`."""

    directory: Path
    kind: str  # REPLAY, FILES, or the campaign's backend
    name: str
    campaign: CampaignInfo | None
    replay: Replay | None
    classification: Classification
    data_files: tuple[Path, ...]
    query_log: QueryLog | None
    events: tuple[Event, ...]  # sorted by time
    funnel_event: Event | None
    rfc8145_keytags: tuple[int, ...]
    inputs: tuple[InputCount, ...]
    options: ReportOptions = field(default_factory=ReportOptions)

    @property
    def scenario_text(self) -> str | None:
        if self.replay is not None and self.replay.scenario_text:
            return self.replay.scenario_text
        return self.campaign.scenario_text if self.campaign else None

    def resolver_names(self) -> dict[str, str]:
        """Address -> resolver name, from the replay's verdicts."""
        if self.replay is None:
            return {}
        return {v.address: v.resolver for v in self.replay.verdicts if v.address}
