"""The local backend: query named resolvers directly with dnspython.

Each round sends every planned test to every target over UDP with DO set and
a 1232-byte EDNS buffer (DNS Flag Day 2020), retrying on timeout and repeating
over TCP when the answer is truncated. Every query gets a fresh label where the
test name has one, so no cache hides a change of state. Each response or
failed attempt becomes one :class:`~rootcanary.observation.Observation`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from rootcanary import names
from rootcanary.campaign import now_iso, open_manifest, save_manifest
from rootcanary.errors import ProbeError
from rootcanary.observation import Observation
from rootcanary.plan import PlannedTest

log = logging.getLogger("rootcanary.local")


@dataclass(frozen=True)
class Target:
    """A resolver to probe; ``name`` becomes the observation's ``probe``."""

    name: str
    address: str
    port: int = 53


@dataclass(frozen=True)
class ProbeSettings:
    timeout: float = 2.0
    retries: int = 2
    bufsize: int = 1232
    tcp_fallback: bool = True
    concurrency: int = 64


@dataclass(frozen=True)
class RoundResult:
    number: int
    started: datetime
    observations: tuple[Observation, ...]

    @property
    def failed(self) -> int:
        return sum(1 for o in self.observations if o.rcode is None)


@dataclass
class LocalRun:
    """What :func:`run_campaign` did; ``file`` holds the observations."""

    directory: Path
    file: Path
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def observations(self) -> list[Observation]:
        return [o for r in self.rounds for o in r.observations]


def response_to_observation(
    response: dns.message.Message,
    *,
    target: Target,
    test: PlannedTest,
    qname: str,
    moment: datetime,
    extra: dict[str, object],
) -> Observation:
    answers = tuple(
        rdata.to_text()
        for rrset in response.answer
        if rrset.rdtype != dns.rdatatype.RRSIG
        for rdata in rrset
    )
    # RFC 8914 §2: an EDE option may appear with any rcode, several per response.
    ede = tuple(
        int(option.code)
        for option in response.options
        if isinstance(option, dns.edns.EDEOption)
    )
    return Observation(
        platform="local",
        measurement=test.role,
        probe=target.name,
        resolver=target.address,
        af=6 if ":" in target.address else 4,
        time=moment,
        qname=qname,
        qtype=test.qtype,
        rcode=dns.rcode.to_text(response.rcode()),
        ad=bool(response.flags & dns.flags.AD),
        answers=answers,
        ede=ede,
        error=None,
        role=test.role,
        extra=extra,
    )


async def query(
    target: Target, test: PlannedTest, settings: ProbeSettings
) -> Observation:
    """One test against one resolver: UDP with retries, then TCP if truncated."""
    qname = test.qname(names.fresh_label())
    message = dns.message.make_query(
        qname, test.qtype, want_dnssec=True, payload=settings.bufsize
    )
    moment = datetime.now(UTC)
    attempts = settings.retries + 1
    error = ""
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            response = await dns.asyncquery.udp(
                message, target.address, timeout=settings.timeout, port=target.port
            )
            transport = "udp"
            if response.flags & dns.flags.TC and settings.tcp_fallback:
                response = await dns.asyncquery.tcp(
                    message, target.address, timeout=settings.timeout, port=target.port
                )
                transport = "tcp"
        except dns.exception.Timeout:
            error = f"timeout after {attempt} attempt(s) of {settings.timeout:g} s"
            continue
        except (OSError, dns.exception.DNSException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        extra: dict[str, object] = {
            "rtt_ms": round((time.perf_counter() - started) * 1000, 3),
            "transport": transport,
            "attempts": attempt,
        }
        return response_to_observation(
            response, target=target, test=test, qname=qname, moment=moment, extra=extra
        )
    return Observation(
        platform="local",
        measurement=test.role,
        probe=target.name,
        resolver=target.address,
        af=6 if ":" in target.address else 4,
        time=moment,
        qname=qname,
        qtype=test.qtype,
        rcode=None,
        ad=None,
        error=error,
        role=test.role,
    )


async def probe_round(
    targets: Sequence[Target], tests: Sequence[PlannedTest], settings: ProbeSettings
) -> list[Observation]:
    """Every test against every target, concurrently, in a stable output order."""
    gate = asyncio.Semaphore(settings.concurrency)

    async def one(target: Target, test: PlannedTest) -> Observation:
        async with gate:
            return await query(target, test, settings)

    jobs = [one(target, test) for target in targets for test in tests]
    return list(await asyncio.gather(*jobs))


def run_campaign(
    directory: Path,
    *,
    name: str,
    targets: Sequence[Target],
    tests: Sequence[PlannedTest],
    settings: ProbeSettings,
    zone: str,
    interval: float | None = None,
    duration: float | None = None,
    scenario_path: Path | None = None,
    scenario_text: str | None = None,
    scenario_sha256: str | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> LocalRun:
    """Probe in rounds (once, or every ``interval`` for ``duration``) into a campaign.

    Observations are appended to ``observations/local-<start>.jsonl`` and
    flushed after every round, so an interrupted run keeps what it measured.
    """
    if not targets:
        raise ProbeError(
            "no resolvers to probe: give --resolver ADDR or a [local] section"
        )
    if not tests:
        raise ProbeError("no tests to run: the scenario's [tests] section selects none")
    manifest = open_manifest(
        directory, "local", name, scenario_path, scenario_text, scenario_sha256
    )
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%S%fZ")
    file = directory / "observations" / f"local-{stamp}.jsonl"
    file.parent.mkdir(parents=True, exist_ok=True)
    run = LocalRun(directory, file)
    entry: dict[str, object] = {
        "started": now_iso(),
        "file": str(file.relative_to(directory)),
        "targets": [
            {"name": t.name, "address": t.address, "port": t.port} for t in targets
        ],
        "rounds": 0,
    }
    manifest.entries.append(entry)
    manifest.roles.update({test.role: test.role for test in tests})
    manifest.extra["zone"] = zone
    save_manifest(directory, manifest)
    deadline = time.monotonic() + duration if duration else None
    number = 0
    with file.open("a", encoding="utf-8") as out:
        while True:
            number += 1
            round_start = time.monotonic()
            moment = datetime.now(UTC)
            observations = asyncio.run(probe_round(targets, tests, settings))
            for observation in observations:
                out.write(observation.to_json() + "\n")
            out.flush()
            result = RoundResult(number, moment, tuple(observations))
            run.rounds.append(result)
            entry["rounds"] = number
            save_manifest(directory, manifest)
            if on_round:
                on_round(result)
            if interval is None:
                break
            next_start = round_start + interval
            if deadline is not None and next_start >= deadline:
                break
            time.sleep(max(0.0, next_start - time.monotonic()))
    return run


def targets_from_testbed_state(state: dict[str, object]) -> list[Target]:
    resolvers = state.get("resolvers")
    if not isinstance(resolvers, list):
        return []
    return [
        Target(str(r["name"]), str(r["address"]), int(r.get("port", 53)))
        for r in resolvers
        if isinstance(r, dict)
    ]
