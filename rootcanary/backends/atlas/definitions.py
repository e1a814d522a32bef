"""From planned tests to RIPE Atlas request bodies, and what they will cost.

Pure functions: no I/O. One request carries one definition per test for one
address family and one probe chunk, so every test of a request runs on the
same probes (the classifier pairs valid and bogus answers per probe). Each
definition's description ends in ``[<campaign tag>/<slot>]``: the slot is the
definition's place in the plan, which is how a rerun recognises measurements
that were created but never recorded (:func:`parse_slot`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rootcanary.plan import PlannedTest
from rootcanary.scenario.atlas import AtlasSpec

#: The tag every rootcanary measurement carries, besides its campaign tag.
PROJECT_TAG = "rootcanary"
#: Credits per DNS result when the scenario gives none. The RIPE Atlas price
#: list is not in our verified notes (atlas.md §2); these are the commonly
#: quoted figures and only feed the estimate. One-off results cost double
#: (verified: price modifier 2).
DEFAULT_CREDITS = {"UDP": 10.0, "TCP": 20.0}
ONEOFF_FACTOR = 2.0

_SLOT = re.compile(r"\[([a-z0-9_-]+)/(\d+)\]\s*$")


@dataclass(frozen=True)
class Slot:
    """One measurement of the plan: the ``position``-th definition of a request."""

    index: int
    request: int
    position: int
    role: str
    af: int


@dataclass(frozen=True)
class Plan:
    tag: str
    bodies: tuple[dict[str, Any], ...]
    slots: tuple[Slot, ...]

    def slot(self, index: int) -> Slot:
        return self.slots[index]


@dataclass(frozen=True)
class Estimate:
    measurements: int
    requests: int
    probes: int  # probes asked for, per address family
    results_per_day: float
    credits_per_day: float
    credits_total: float | None  # None: no stop time
    days: float | None


def campaign_tag(scenario_name: str, nonce: str) -> str:
    """``rc-ksk-2024-1a2b3c``: a measurement tag naming this campaign."""
    slug = re.sub(r"[^a-z0-9]+", "-", scenario_name.lower()).strip("-")[:24]
    return f"rc-{slug or 'campaign'}-{nonce}"


def parse_slot(description: str, tag: str) -> int | None:
    """The slot of a measurement description made by :func:`build_plan`."""
    match = _SLOT.search(description or "")
    if not match or match.group(1) != tag:
        return None
    return int(match.group(2))


def query_argument(test: PlannedTest, label: str) -> str:
    """The qname a probe sends, with the probe-side macro as unique label.

    The template puts ``{label}`` right of any sentinel label, which stays
    leftmost as RFC 8509 §2.1 requires; ``prepend_probe_id`` would break
    that, so it is never used.
    """
    name = test.qname(label)
    return name if name == "." else name.rstrip(".")


def definition(
    test: PlannedTest,
    spec: AtlasSpec,
    af: int,
    description: str,
    tags: Sequence[str],
) -> dict[str, Any]:
    """One DNS definition, every field explicit (atlas.md §1.1-§1.3)."""
    override = spec.overrides.get(test.role)
    protocol = (override and override.protocol) or spec.protocol
    buffer_size = (override and override.buffer_size) or spec.buffer_size
    qname = query_argument(test, spec.label)
    out: dict[str, Any] = {
        "type": "dns",
        "af": af,
        "description": description,
        "query_class": "IN",
        "query_type": test.qtype,
        "query_argument": qname,
        "use_macros": "$" in qname,
        "use_probe_resolver": True,
        "set_rd_bit": True,
        # DO asks for signatures; CD stays clear, as RFC 8509 §2.1 requires
        # for sentinel processing and so that the resolver validates.
        "set_do_bit": True,
        "set_cd_bit": False,
        "set_nsid_bit": spec.nsid,
        "protocol": protocol,
        # Without a size the probe advertises 512 octets with DO, and signed
        # answers come back truncated (atlas.md §1.3).
        "udp_payload_size": buffer_size,
        "retry": _pick(override.retry if override else None, spec.retry),
        "timeout": _pick(override.timeout_ms if override else None, spec.timeout_ms),
        "include_abuf": True,
        "include_qbuf": False,
        "prepend_probe_id": False,
        "tags": list(tags),
        "is_public": spec.is_public,
    }
    if spec.interval is not None:
        out["interval"] = spec.interval
        out["spread"] = spec.effective_spread
    return out


def build_plan(
    scenario_name: str,
    spec: AtlasSpec,
    tests: Sequence[PlannedTest],
    probe_requests: Sequence[Sequence[dict[str, Any]]],
    tag: str,
    now: int,
) -> Plan:
    """Every request body of the campaign, in a stable order."""
    if not tests:
        raise ValueError("the scenario's [tests] plan no query")
    prefix = spec.description or f"rootcanary {scenario_name}"
    tags = [PROJECT_TAG, tag, *[t for t in spec.tags if t not in (PROJECT_TAG, tag)]]
    times = _times(spec, now)
    bodies: list[dict[str, Any]] = []
    slots: list[Slot] = []
    parts = len(probe_requests)
    for af in spec.af:
        for part, sources in enumerate(probe_requests):
            request = len(bodies)
            definitions = []
            for position, test in enumerate(tests):
                index = len(slots)
                where = f" part {part + 1}/{parts}" if parts > 1 else ""
                description = f"{prefix}: {test.role} af{af}{where} [{tag}/{index}]"
                definitions.append(definition(test, spec, af, description, tags))
                slots.append(Slot(index, request, position, test.role, af))
            body: dict[str, Any] = {
                "definitions": definitions,
                "probes": [dict(source) for source in sources],
                "is_oneoff": spec.oneoff,
                **times,
            }
            if spec.bill_to:
                body["bill_to"] = spec.bill_to
            bodies.append(body)
    return Plan(tag, tuple(bodies), tuple(slots))


def subset_body(
    body: dict[str, Any], positions: Sequence[int], same_probes_as: int | None
) -> dict[str, Any]:
    """The request for only some definitions of ``body``.

    When other definitions of the request already exist and its probes were
    not given by id, ``same_probes_as`` (one of those measurements) is used as
    the probe source so that the platform picks the very same probes.
    """
    out = dict(body)
    out["definitions"] = [body["definitions"][i] for i in positions]
    explicit = all(source.get("type") == "probes" for source in body["probes"])
    if same_probes_as is not None and not explicit:
        requested = sum(int(source["requested"]) for source in body["probes"])
        out["probes"] = [
            {"type": "msm", "value": same_probes_as, "requested": requested}
        ]
    return out


def estimate(bodies: Sequence[dict[str, Any]], spec: AtlasSpec, now: int) -> Estimate:
    """Results and credits per day; an estimate, since probes come and go."""
    per_day = 0.0
    results = 0.0
    measurements = 0
    probes = 0
    for body in bodies:
        requested = sum(int(source["requested"]) for source in body["probes"])
        probes += requested
        for item in body["definitions"]:
            measurements += 1
            cost = spec.credits_per_result or DEFAULT_CREDITS[item["protocol"]]
            if body["is_oneoff"]:
                count = float(requested)
                cost *= ONEOFF_FACTOR
            else:
                count = requested * 86400 / int(item["interval"])
            results += count
            per_day += count * cost
    days: float | None = None
    total: float | None = None
    if spec.oneoff:
        total = per_day  # every result at once
    elif bodies and "stop_time" in bodies[0]:
        start = bodies[0].get("start_time", now)
        days = max(0.0, (bodies[0]["stop_time"] - start) / 86400)
        total = per_day * days
    return Estimate(
        measurements=measurements,
        requests=len(bodies),
        probes=probes // max(1, len(spec.af)),
        results_per_day=results,
        credits_per_day=per_day,
        credits_total=total,
        days=days,
    )


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _times(spec: AtlasSpec, now: int) -> dict[str, int]:
    out: dict[str, int] = {}
    if spec.start is not None:
        out["start_time"] = spec.start
    if spec.stop is not None:
        out["stop_time"] = spec.stop
    elif spec.duration is not None:
        out["stop_time"] = (spec.start or now) + spec.duration
    return out
