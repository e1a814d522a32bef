"""Replaying a root KSK rollover in the testbed: ``rootcanary testbed run``.

The scenario's ``[rollover]`` timeline (publish, roll, revoke, remove) is
applied by our server to the private root's DNSKEY set, phase by phase, while
real resolvers with accelerated RFC 5011 timers follow it. Every resolver is
probed each ``probe_interval`` (fresh sentinel labels for both key tags), and
at the end each gets a verdict: when it trusted the new key, whether it stayed
secure through the roll, when it dropped the revoked key. The expected outcome
follows from its configuration (RFC 5011 §2.4: a managed anchor follows the
roll; a static or stale one cannot), and a contradiction fails the run.

The run directory's ``replay.json`` summarises it (the report reads it);
``campaign/`` holds the observations, ``server/queries.jsonl`` the root's
query log with its RFC 8145 signals and DNSKEY queries.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from rootcanary.backends.local import (
    LocalRun,
    ProbeSettings,
    RoundResult,
    Target,
    run_campaign,
)
from rootcanary.campaign import write_atomic
from rootcanary.classify import BucketState, classify
from rootcanary.errors import TestbedError
from rootcanary.observation import Tally, format_time, parse_time
from rootcanary.plan import PlannedTest, plan_tests
from rootcanary.readers import lines
from rootcanary.scenario import Scenario
from rootcanary.scenario.rollover import RolloverSpec
from rootcanary.scenario.testbed import ResolverSpec
from rootcanary.scenario.tests import TestsSpec
from rootcanary.telemetry import signalled_tags
from rootcanary.testbed import Testbed

log = logging.getLogger("rootcanary.replay")

REPLAY_FILE = "replay.json"
REPLAY_SCHEMA = 1
#: A bucket so wide that one probing round is always one bucket.
_ONE_BUCKET = 10**9


@dataclass(frozen=True)
class KeyInfo:
    """A root KSK of the replay: its slot, its tag, its tag once revoked."""

    slot: str
    tag: int
    revoked_tag: int

    def to_dict(self) -> dict[str, object]:
        return {"slot": self.slot, "tag": self.tag, "revoked_tag": self.revoked_tag}


@dataclass(frozen=True)
class RoundState:
    """One resolver's state in one probing round."""

    time: datetime
    validation: str
    new: str | None  # RFC 8509 §3 type for the new KSK's tag
    old: str | None  # ... and for the old KSK's tag


@dataclass(frozen=True)
class ReplayVerdict:
    resolver: str
    implementation: str
    variant: str
    address: str
    expected: str  # "survives", "breaks", "insecure" or "uncertain"
    outcome: str  # "survived", "broke", "insecure", "no data"
    trusted_new_at: datetime | None
    secure_through_roll: bool
    first_bogus_at: datetime | None
    dropped_revoked_at: datetime | None
    notes: str

    @property
    def ok(self) -> bool:
        wanted = {"survives": "survived", "breaks": "broke", "insecure": "insecure"}
        return self.expected == "uncertain" or wanted.get(self.expected) == self.outcome


@dataclass
class ReplayResult:
    run_dir: Path
    started: datetime
    finished: datetime
    phases: list[tuple[str, datetime]]
    verdicts: list[ReplayVerdict]
    keys: dict[str, KeyInfo]
    restarts: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


# -- expectations -------------------------------------------------------------


def expected_outcome(resolver: ResolverSpec, scenario: Scenario) -> tuple[str, str]:
    """What the configuration implies, and why (RFC 5011 §2.4, RFC 8509 §3)."""
    rollover = scenario.rollover
    testbed = scenario.testbed
    assert rollover is not None and testbed is not None
    if rollover.time_of("roll") is None:
        return "uncertain", "no roll in this timeline"
    if resolver.variant == "off":
        return "insecure", "does not validate"
    if resolver.variant == "stale":
        return "breaks", "its anchor is a key the root never used"
    if resolver.variant == "static":
        return "breaks", "a static anchor is never updated (no RFC 5011)"
    if resolver.implementation == "pdns-recursor":
        return "breaks", "PowerDNS Recursor has no RFC 5011: its anchor is static"
    if resolver.variant == "stateless":
        return _stateless_expectation(resolver, rollover, testbed.holddown)
    return "survives", "an RFC 5011-managed anchor follows the roll"


def _stateless_expectation(
    resolver: ResolverSpec, rollover: RolloverSpec, holddown: float | None
) -> tuple[str, str]:
    publish, roll = rollover.time_of("publish"), rollover.time_of("roll")
    if publish is None or roll is None:
        return "uncertain", "no publish and roll phases"
    restarts = [
        t for r in rollover.restarts if r.resolver == resolver.name for t in r.at
    ]
    if any(t >= roll for t in restarts):
        # Its initial key no longer signs the DNSKEY set: nothing to start from.
        return "breaks", "restarted after the roll with only the old key to start from"
    if resolver.implementation == "bind":
        # Seen with BIND 9.18: initialising an initial-key trust point trusts
        # every key of the DNSKEY set it validates at once ("waiving the
        # normal 30-day waiting period"), so restarts before the roll pick up
        # the published new key without a hold-down.
        return "survives", "BIND trusts the whole validated set when it initialises"
    hold = holddown if holddown is not None else 30 * 86400.0
    during = sorted(t for t in restarts if publish <= t < roll)
    # Each restart wipes the AddPend state (RFC 5011 §2.4.1): the hold-down
    # starts over.
    starts = [publish, *during]
    gaps = [b - a for a, b in zip(starts, [*during, roll], strict=True)]
    if all(gap < hold for gap in gaps):
        return "breaks", (
            f"restarted every < {hold:g} s during the add hold-down, so it never "
            "completes it and never trusts the new key"
        )
    if max(gaps) > 2 * hold + 60:
        return "survives", "a restart-free stretch longer than the hold-down"
    return "uncertain", "the hold-down and the restarts are too close to call"


# -- the run --------------------------------------------------------------------


def replay_tests(
    spec: TestsSpec | None, zone: str, old: int, new: int
) -> tuple[PlannedTest, ...]:
    """valid, bogus-sig, is-ta/not-ta for both key tags, whoami and DNSKEY."""
    base = spec or TestsSpec(zone=zone)
    tests = TestsSpec(
        zone=base.zone,
        bogus=("sig",),
        keytags=(old, new),
        whoami=True,
        dnskey=True,
        qtype=base.qtype,
    )
    return plan_tests(tests)


def run_replay(
    scenario: Scenario,
    run_dir: Path | None = None,
    on_round: Callable[[float, str, RoundResult], None] | None = None,
) -> ReplayResult:
    if scenario.rollover is None or scenario.testbed is None:
        raise TestbedError(f"{scenario.path}: a replay needs [rollover] and [testbed]")
    rollover = scenario.rollover
    testbed = Testbed(scenario, run_dir)
    shutil.rmtree(testbed.run_dir / "campaign", ignore_errors=True)
    for stale in (testbed.query_log, testbed.server_dir / "events.jsonl"):
        stale.unlink(missing_ok=True)
    with testbed:
        keys = _key_tags(testbed)
        zone = scenario.tests.zone if scenario.tests else scenario.test_zones[0].apex
        tests = replay_tests(scenario.tests, zone, keys["old"].tag, keys["new"].tag)
        started = _server_start(testbed)
        restarts = _schedule_restarts(rollover)
        done_restarts: list[tuple[str, datetime]] = []
        targets = [Target(r.name, r.address, r.port) for r in testbed.resolvers]
        settings = ProbeSettings(timeout=2.0, retries=1)
        deadline = started + timedelta(seconds=rollover.duration)

        def between_rounds(result: RoundResult) -> None:
            offset = (datetime.now(UTC) - started).total_seconds()
            if on_round:
                on_round(offset, rollover.phase_at(offset), result)
            while restarts and restarts[0][0] <= offset:
                at, name = restarts.pop(0)
                testbed.restart(name)
                done_restarts.append((name, datetime.now(UTC)))
                log.info(
                    "restarted %s at +%.0f s (scheduled +%.0f s)", name, offset, at
                )

        remaining = (deadline - datetime.now(UTC)).total_seconds()
        run = run_campaign(
            testbed.run_dir / "campaign",
            name=scenario.name,
            targets=targets,
            tests=tests,
            settings=settings,
            zone=zone,
            interval=rollover.probe_interval,
            duration=max(remaining, rollover.probe_interval),
            scenario_path=scenario.path,
            scenario_text=scenario.text,
            scenario_sha256=scenario.sha256,
            on_round=between_rounds,
        )
        phases = _phases(testbed, started)
    finished = datetime.now(UTC)
    verdicts = [
        _verdict(spec, scenario, _timeline(run, spec.name, keys), phases)
        for spec in scenario.testbed.resolvers
    ]
    result = ReplayResult(
        testbed.run_dir, started, finished, phases, verdicts, keys, done_restarts
    )
    write_summary(result, scenario, testbed.query_log)
    return result


def _key_tags(testbed: Testbed) -> dict[str, KeyInfo]:
    from authserver.anchor import root_trust_anchor

    rollover = testbed.scenario.rollover
    assert rollover is not None
    out: dict[str, KeyInfo] = {}
    for role, slot in (("old", rollover.old), ("new", rollover.new)):
        anchor = root_trust_anchor(
            testbed.scenario, testbed.server_dir / "keys", (slot,)
        )
        key = anchor.keys[0]
        out[role] = KeyInfo(slot, key.tag, _revoked_tag(key.rdata))
    return out


def _revoked_tag(rdata: str) -> int:
    """RFC 5011 §7: setting REVOKE (flags | 0x0080) changes the key tag."""
    key = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, rdata)
    assert isinstance(key, DNSKEY)
    revoked = key.replace(flags=key.flags | 0x0080)
    assert isinstance(revoked, DNSKEY)
    return dns.dnssec.key_id(revoked)


def _events(testbed: Testbed) -> list[dict[str, object]]:
    path = testbed.server_dir / "events.jsonl"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _server_start(testbed: Testbed) -> datetime:
    for event in _events(testbed):
        if event.get("event") == "start":
            return parse_time(event["time"])
    raise TestbedError(
        f"the server wrote no start event to {testbed.server_dir / 'events.jsonl'}"
    )


def _phases(testbed: Testbed, started: datetime) -> list[tuple[str, datetime]]:
    out = [("start", started)]
    for event in _events(testbed):
        if event.get("event") == "phase" and event.get("state") != "start":
            out.append((str(event["state"]), parse_time(event["time"])))
    return out


def _schedule_restarts(rollover: RolloverSpec) -> list[tuple[float, str]]:
    return sorted((at, r.resolver) for r in rollover.restarts for at in r.at)


def _timeline(run: LocalRun, name: str, keys: dict[str, KeyInfo]) -> list[RoundState]:
    old, new = keys["old"].tag, keys["new"].tag
    states = []
    for result in run.rounds:
        observations = [o for o in result.observations if o.probe == name]
        if not observations:
            continue
        classified = classify(
            observations, bucket_seconds=_ONE_BUCKET, keytags=(old, new)
        )
        bucket: BucketState | None = next(iter(classified.buckets), None)
        if bucket is None:
            continue
        tas = {t.keytag: t.state for t in bucket.trust_anchors}
        states.append(
            RoundState(result.started, bucket.validation, tas.get(new), tas.get(old))
        )
    return states


def _verdict(
    spec: ResolverSpec,
    scenario: Scenario,
    timeline: list[RoundState],
    phases: list[tuple[str, datetime]],
) -> ReplayVerdict:
    expected, why = expected_outcome(spec, scenario)
    at = dict(phases)
    roll, revoke = at.get("roll"), at.get("revoke")
    trusted_new = next((s.time for s in timeline if s.new == "Vnew"), None)
    first_bogus = next((s.time for s in timeline if s.validation == "bogus"), None)
    dropped = None
    if revoke is not None:
        dropped = next(
            (
                s.time
                for s in timeline
                if s.time >= revoke
                and s.old in ("Vold", None)
                and s.validation == "secure"
            ),
            None,
        )
    after_roll = [s for s in timeline if roll is None or s.time >= roll]
    secure_through = bool(after_roll) and all(
        s.validation == "secure" for s in after_roll
    )
    if not timeline:
        outcome = "no data"
    elif all(s.validation == "insecure" for s in timeline):
        outcome = "insecure"
    elif any(s.validation in ("bogus", "unknown") for s in after_roll):
        outcome = "broke"
    else:
        outcome = "survived"
    return ReplayVerdict(
        resolver=spec.name,
        implementation=spec.implementation,
        variant=spec.variant,
        address=spec.address,
        expected=expected,
        outcome=outcome,
        trusted_new_at=trusted_new,
        secure_through_roll=secure_through,
        first_bogus_at=first_bogus,
        dropped_revoked_at=dropped,
        notes=why,
    )


# -- the root's side: RFC 8145 signals and DNSKEY queries ---------------------


def keytag_sets(query_log: Path) -> list[dict[str, object]]:
    """Each change of a source's RFC 8145 key-tag set (RFC 8145 §4 and §5)."""
    last: dict[str, tuple[int, ...]] = {}
    out: list[dict[str, object]] = []
    for line in _log_lines(query_log):
        tags = signalled_tags(line)
        src = line.get("src")
        if not tags or not isinstance(src, str):
            continue
        current = tuple(sorted(set(tags)))
        if last.get(src) != current:
            last[src] = current
            out.append({"src": src, "time": line["time"], "tags": list(current)})
    return out


def dnskey_rates(
    query_log: Path, phases: list[tuple[str, datetime]], finished: datetime
) -> list[dict[str, object]]:
    """Root DNSKEY queries per source and phase (the IMC 2019 paper saw floods)."""
    bounds = [
        (state, begin, end)
        for (state, begin), (_, end) in zip(
            phases, [*phases[1:], ("end", finished)], strict=True
        )
    ]
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for line in _log_lines(query_log):
        if (
            line.get("qtype") != "DNSKEY"
            or str(line.get("qname", "")).rstrip(".") != ""
        ):
            continue
        when = parse_time(line["time"])
        for state, begin, end in bounds:
            if begin <= when < end:
                counts[(str(line.get("src")), state)] += 1
                break
    order = {state: index for index, (state, _, _) in enumerate(bounds)}
    out = []
    for (src, state), queries in sorted(
        counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])
    ):
        _, begin, end = next(b for b in bounds if b[0] == state)
        seconds = max((end - begin).total_seconds(), 1e-9)
        out.append(
            {
                "src": src,
                "phase": state,
                "queries": queries,
                "seconds": round(seconds, 3),
                "per_minute": round(queries * 60 / seconds, 3),
            }
        )
    return out


def _log_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The query log's records; a torn last line (a killed server) is skipped."""
    if not path.exists():
        return
    for _, line in lines.values(path, Tally()):
        if isinstance(line, dict) and isinstance(line.get("time"), str):
            yield line


def write_summary(result: ReplayResult, scenario: Scenario, query_log: Path) -> Path:
    testbed = scenario.testbed
    rollover = scenario.rollover
    assert testbed is not None and rollover is not None
    root = scenario.root
    summary = {
        "schema_version": REPLAY_SCHEMA,
        "scenario": {
            "name": scenario.name,
            "path": str(scenario.path),
            "text": scenario.text,
        },
        "started": format_time(result.started),
        "finished": format_time(result.finished),
        "parameters": {
            "probe_interval": rollover.probe_interval,
            "holddown": testbed.holddown,
            "refresh": testbed.refresh,
            "dnskey_ttl": root.dnskey_ttl if root else None,
        },
        "keys": {role: key.to_dict() for role, key in result.keys.items()},
        "phases": [
            {
                "state": state,
                "at": format_time(at),
                "offset": round((at - result.started).total_seconds(), 3),
            }
            for state, at in result.phases
        ],
        "restarts": [
            {
                "resolver": name,
                "at": format_time(at),
                "offset": round((at - result.started).total_seconds(), 3),
            }
            for name, at in result.restarts
        ],
        "verdicts": [
            {
                "resolver": v.resolver,
                "implementation": v.implementation,
                "variant": v.variant,
                "address": v.address,
                "expected": v.expected,
                "outcome": v.outcome,
                "ok": v.ok,
                "trusted_new_at": _iso(v.trusted_new_at),
                "secure_through_roll": v.secure_through_roll,
                "first_bogus_at": _iso(v.first_bogus_at),
                "dropped_revoked_at": _iso(v.dropped_revoked_at),
                "notes": v.notes,
            }
            for v in result.verdicts
        ],
        "keytag_sets": keytag_sets(query_log),
        "dnskey_rates": dnskey_rates(query_log, result.phases, result.finished),
    }
    path = result.run_dir / REPLAY_FILE
    write_atomic(path, json.dumps(summary, indent=2) + "\n")
    return path


def _iso(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None
