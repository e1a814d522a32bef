"""The ``[atlas]`` section: RIPE Atlas DNS measurements through probes' resolvers.

Example (every key but ``probes`` has a default; see the README)::

    [atlas]
    description = "KSK-2024 rollover"     # start of every measurement description
    af = [4]                              # 4, 6 or [4, 6]: one definition per af
    interval = "1h"                       # omit (or oneoff = true) for a one-off
    start = "now"                         # or "2026-12-10T00:00:00Z" or Unix seconds
    duration = "30d"                      # or stop = "2027-01-10T00:00:00Z"
    spread = "400s"                       # default min(interval / 2, 400 s)
    protocol = "UDP"                      # or "TCP"
    buffer_size = 1232                    # EDNS0 UDP size; 512 truncates DNSSEC
    timeout = "5s"
    retry = 0
    label = "$p-$r"                       # the unique label: probe id, random hex
    tags = ["ksk-2024"]                   # extra measurement tags
    is_public = true
    # bill_to = "someone@example.org"
    # credits_per_result = 10             # for the estimate only

    [[atlas.probes]]                      # one or more selections
    all = true                            # or area/country/asn/prefix/ids/region
    requested = "all"                     # or a number of probes
    include_tags = ["system-resolves-a-correctly"]
    exclude_tags = []

    [atlas.limits]
    max_probes = 1000                     # per measurement; larger asks are split
    max_concurrent = 100                  # measurements running on the account

    [atlas.override.dnskey]               # per role: buffer_size, protocol, ...
    buffer_size = 4096

Times are kept in UTC Unix seconds; ISO 8601 with an offset is converted
exactly (cousteau shifts aware non-UTC datetimes, so rootcanary never hands it
one).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rootcanary.config import Table

#: RIPE Atlas probe-selection types rootcanary writes (REST API ``probes[].type``).
SELECTION_KINDS = ("all", "area", "country", "asn", "prefix", "ids", "region")
#: Old-style ``area`` values of the API.
AREAS = ("WW", "West", "North-Central", "South-Central", "North-East", "South-East")
#: ``query_type`` values the API accepts for DNS measurements.
QUERY_TYPES = (
    "A",
    "AAAA",
    "ANY",
    "CNAME",
    "DNSKEY",
    "DS",
    "MX",
    "NS",
    "NSEC",
    "PTR",
    "RRSIG",
    "SOA",
    "TXT",
    "SRV",
    "NAPTR",
    "TLSA",
)
#: Probe-side macros (libbb/atlas_name_macro.c): probe id, time, random hex,
#: each with its longest expansion, to bound the label length.
MACRO_WIDTH = {"$p": 7, "$t": 10, "$r": 16}
#: The API's ``spread`` maximum, in seconds.
MAX_SPREAD = 400
# Measurement tags: lower-case slugs. The API's exact rule is not documented in
# our notes; this conservative form is accepted by every client we know.
_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
_LABEL_CHARS = re.compile(r"^(?:[a-z0-9-]|\$[prt])+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class ProbeSelection:
    """One ``[[atlas.probes]]`` entry; ``requested`` None means all matching."""

    kind: str
    value: str | int | tuple[int, ...] | None
    requested: int | None
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()

    @property
    def explicit(self) -> bool:
        return self.kind == "ids"


@dataclass(frozen=True)
class AtlasLimits:
    """Platform limits and retry policy (the limits are per account/measurement)."""

    max_probes: int = 1000
    max_concurrent: int = 100
    credits_per_day: int = 1_000_000
    definitions_per_request: int | None = None
    retries: int = 6
    backoff: float = 2.0
    backoff_max: float = 120.0
    slot_poll: float = 60.0
    http_timeout: float = 60.0


@dataclass(frozen=True)
class DefinitionOverride:
    """Per-role changes to the DNS definition (e.g. a larger buffer for DNSKEY)."""

    buffer_size: int | None = None
    protocol: str | None = None
    timeout_ms: int | None = None
    retry: int | None = None


@dataclass(frozen=True)
class AtlasSpec:
    probes: tuple[ProbeSelection, ...]
    description: str = ""
    af: tuple[int, ...] = (4,)
    interval: int | None = None
    start: int | None = None  # Unix seconds; None: as soon as possible
    stop: int | None = None  # Unix seconds
    duration: int | None = None  # seconds after the start (or after planning)
    never_stop: bool = False
    spread: int | None = None
    protocol: str = "UDP"
    buffer_size: int = 1232
    timeout_ms: int = 5000
    retry: int = 0
    nsid: bool = False
    label: str = "$p-$r"
    tags: tuple[str, ...] = ()
    is_public: bool = True
    bill_to: str | None = None
    credits_per_result: float | None = None
    limits: AtlasLimits = AtlasLimits()
    overrides: dict[str, DefinitionOverride] = field(default_factory=dict)

    @property
    def oneoff(self) -> bool:
        return self.interval is None

    @property
    def effective_spread(self) -> int | None:
        if self.interval is None:
            return None
        if self.spread is not None:
            return self.spread
        return min(self.interval // 2, MAX_SPREAD)


def parse_atlas(table: Table | None) -> AtlasSpec | None:
    if table is None:
        return None
    oneoff = table.flag("oneoff", False)
    interval: int | None = None
    if table.has("interval"):
        if oneoff:
            table.fail("interval", "give either interval or oneoff = true, not both")
        interval = int(table.duration("interval", minimum=60))
    start = _moment(table, "start")
    stop_raw = table.raw("stop", None)
    never_stop = stop_raw == "never"
    stop = None if never_stop else _moment(table, "stop")
    duration = None
    if table.has("duration"):
        if stop is not None or never_stop:
            table.fail("duration", "give either stop or duration, not both")
        duration = int(table.duration("duration", minimum=60))
    if start is not None and stop is not None and stop <= start:
        table.fail("stop", "must be after start")
    if interval is not None and stop is None and duration is None and not never_stop:
        table.fail(
            "interval",
            'a periodic campaign needs stop or duration (or stop = "never", '
            "which spends credits until `rootcanary stop`)",
        )
    spread = None
    if table.has("spread"):
        if interval is None:
            table.fail("spread", "only periodic measurements (interval) have a spread")
        spread = int(table.duration("spread"))
        if spread > MAX_SPREAD or spread > interval:
            table.fail(
                "spread", f"must be at most {MAX_SPREAD}s and at most the interval"
            )
    spec = AtlasSpec(
        probes=_selections(table),
        description=table.text("description", ""),
        af=_afs(table),
        interval=interval,
        start=start,
        stop=stop,
        duration=duration,
        never_stop=never_stop,
        spread=spread,
        protocol=table.text("protocol", "UDP", choices=("UDP", "TCP")),
        buffer_size=table.integer("buffer_size", 1232, minimum=512, maximum=4096),
        timeout_ms=_timeout_ms(table, "timeout", 5000),
        retry=table.integer("retry", 0, minimum=0, maximum=10),
        nsid=table.flag("nsid", False),
        label=_label(table),
        tags=_tags(table, "tags"),
        is_public=table.flag("is_public", True),
        bill_to=table.text("bill_to", None),
        credits_per_result=table.number("credits_per_result", None, minimum=0),
        limits=_limits(table.table("limits", None)),
        overrides=_overrides(table.table("override", None)),
    )
    table.done()
    return spec


def _moment(table: Table, key: str) -> int | None:
    value = table.raw(key, None)
    if value is None or (value == "now" and key == "start"):
        return None
    if isinstance(value, bool):
        table.fail(key, f"expected ISO 8601 UTC time or Unix seconds, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):  # a TOML date-time literal
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            table.fail(key, f"not an ISO 8601 time: {value!r}")
    else:
        table.fail(key, f"expected ISO 8601 UTC time or Unix seconds, got {value!r}")
    if moment.tzinfo is None:
        table.fail(key, f"give a time zone (Z or +HH:MM): {value!r}")
    return int(moment.astimezone(UTC).timestamp())


def _afs(table: Table) -> tuple[int, ...]:
    raw = table.raw("af", 4)
    afs = (raw,) if isinstance(raw, int) and not isinstance(raw, bool) else None
    if afs is None:
        afs = table.items("af", int)
    if not afs or any(af not in (4, 6) for af in afs) or len(set(afs)) != len(afs):
        table.fail("af", f"expected 4, 6 or [4, 6], got {raw!r}")
    return tuple(afs)


def _timeout_ms(table: Table, key: str, default: int) -> int:
    if not table.has(key):
        return default
    millis: int = round(table.duration(key) * 1000)
    if not 100 <= millis <= 30000:
        table.fail(key, f"must be between 100ms and 30s, got {millis}ms")
    return millis


def _label(table: Table) -> str:
    label: str = table.text("label", "$p-$r")
    if not _LABEL_CHARS.match(label):
        table.fail(
            "label",
            f"{label!r}: use lower-case letters, digits, '-' and the macros "
            "$p (probe id), $r (random hex, per resolver), $t (time)",
        )
    if "$r" not in label:
        # $r is re-expanded for each of a probe's resolvers (atlas.md §1.4);
        # without it two resolvers of one probe can share a cache entry.
        table.fail("label", f"{label!r} must contain $r, unique per resolver")
    width = len(label)
    for macro, longest in MACRO_WIDTH.items():
        width += label.count(macro) * (longest - len(macro))
    if width > 63:
        table.fail("label", f"{label!r} can expand to {width} octets; at most 63")
    if label.startswith("-") or label.endswith("-"):
        table.fail("label", f"{label!r}: a label cannot start or end with '-'")
    return label


def _tags(table: Table, key: str) -> tuple[str, ...]:
    tags = table.items(key, str, ())
    for index, tag in enumerate(tags):
        if not _TAG.match(tag):
            table.fail(
                f"{key}[{index}]",
                f"{tag!r}: tags are lower-case letters, digits, '-' and '_'",
            )
    return tuple(tags)


def _selections(table: Table) -> tuple[ProbeSelection, ...]:
    tables = table.tables("probes")
    if not tables:
        table.fail("probes", "required: at least one [[atlas.probes]] selection")
    return tuple(_selection(sub) for sub in tables)


def _selection(table: Table) -> ProbeSelection:
    given = [kind for kind in SELECTION_KINDS if table.has(kind)]
    if len(given) != 1:
        table.fail(
            None, f"give exactly one of {', '.join(SELECTION_KINDS)}, got {given}"
        )
    kind = given[0]
    value: str | int | tuple[int, ...] | None
    if kind == "all":
        if table.flag("all") is not True:
            table.fail("all", "write all = true, or choose another selection")
        value = None
    elif kind == "area":
        value = table.text("area", choices=AREAS)
    elif kind == "country":
        country: str = table.text("country")
        value = country
        if not _COUNTRY.match(country):
            table.fail("country", f"expected an ISO 3166 code like NL, got {value!r}")
    elif kind == "asn":
        value = table.integer("asn", minimum=1, maximum=2**32 - 1)
    elif kind == "prefix":
        text = table.text("prefix")
        try:
            value = str(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            table.fail("prefix", str(exc))
    elif kind == "ids":
        ids = table.items("ids", int)
        if not ids or any(i < 1 for i in ids) or len(set(ids)) != len(ids):
            table.fail("ids", "expected a non-empty list of distinct probe ids")
        value = tuple(ids)
    else:
        value = table.text("region")
    requested = _requested(table, kind, value)
    include = _tags(table, "include_tags")
    exclude = _tags(table, "exclude_tags")
    if set(include) & set(exclude):
        table.fail("exclude_tags", "a tag cannot be both included and excluded")
    table.done()
    return ProbeSelection(kind, value, requested, include, exclude)


def _requested(table: Table, kind: str, value: Any) -> int | None:
    raw = table.raw("requested", "all" if kind == "ids" else None)
    if raw is None:
        table.fail("requested", 'required: a number of probes, or "all"')
    if raw == "all":
        return len(value) if kind == "ids" else None
    requested: int = table.integer("requested", minimum=1)
    if kind == "ids" and requested > len(value):
        table.fail("requested", f"only {len(value)} ids are listed")
    return requested


def _limits(table: Table | None) -> AtlasLimits:
    if table is None:
        return AtlasLimits()
    base = AtlasLimits()
    per_request = table.integer("definitions_per_request", None, minimum=1)
    limits = AtlasLimits(
        max_probes=table.integer("max_probes", base.max_probes, minimum=1),
        max_concurrent=table.integer("max_concurrent", base.max_concurrent, minimum=1),
        credits_per_day=table.integer(
            "credits_per_day", base.credits_per_day, minimum=0
        ),
        definitions_per_request=per_request,
        retries=table.integer("retries", base.retries, minimum=0, maximum=100),
        backoff=table.duration("backoff", base.backoff),
        backoff_max=table.duration("backoff_max", base.backoff_max),
        slot_poll=table.duration("slot_poll", base.slot_poll, minimum=0.01),
        http_timeout=table.duration("http_timeout", base.http_timeout, minimum=0.1),
    )
    table.done()
    return limits


def _overrides(table: Table | None) -> dict[str, DefinitionOverride]:
    if table is None:
        return {}
    # Local import: names imports nothing from scenario, but keep the section
    # importable on its own.
    from rootcanary.names import check_role

    out: dict[str, DefinitionOverride] = {}
    for role in list(table.keys()):
        try:
            check_role(role)
        except ValueError as exc:
            table.fail(role, str(exc))
        sub = table.table(role)
        out[role] = DefinitionOverride(
            buffer_size=sub.integer("buffer_size", None, minimum=512, maximum=4096),
            protocol=sub.text("protocol", None, choices=("UDP", "TCP")),
            timeout_ms=_timeout_ms(sub, "timeout", 0) or None,
            retry=sub.integer("retry", None, minimum=0, maximum=10),
        )
        sub.done()
    table.done()
    return out
