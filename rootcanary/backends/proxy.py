"""The proxy-network prober: plain-HTTP fetches of test names through exit nodes.

Each exit session gets one fresh label; the valid, bogus, sentinel and matrix
names of the plan are fetched with that label, one after the other, through
the gateway with the same session token, so they are pinned to one exit (a
sticky session lives 60 s after its last request, proxy.md §1.5). The exit's
resolver looks the names up (``-dns-remote``); our server logs which resolver
asked and our web server which exit fetched. Plain ``http://`` is used because
the provider's exit and error headers sit on the CONNECT reply for HTTPS,
which aiohttp drops (proxy.md §1.3, §5).

Every attempt is one JSON line in ``CAMPAIGN/proxy/requests-<start>.jsonl``
(status, all response headers, exit id, error code, timing, outcome); the join
(:mod:`rootcanary.backends.proxy_join`) turns them into observations.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp

from rootcanary.backends import proxy_outcome as po
from rootcanary.campaign import now_iso, open_manifest, save_manifest
from rootcanary.errors import ConfigError, ProxyError
from rootcanary.plan import PlannedTest
from rootcanary.scenario.proxy import ProxySpec, render
from rootcanary.secrets import Secret, redact

log = logging.getLogger("rootcanary.proxy")

REQUEST_SCHEMA = 1
REQUESTS_DIR = "proxy"
USER_AGENT = "rootcanary/0.1 (DNSSEC resolver measurement)"
#: Bytes of a response body read (our responder sends 21); the rest is dropped.
MAX_BODY = 4096
#: Bytes of an error body kept in the log, for diagnosis.
MAX_ERROR_BODY = 256
#: Fetchable roles: names with A/AAAA records pointing at our web server.
FETCH_QTYPES = ("A", "AAAA")


@dataclass(frozen=True, slots=True)
class Fetch:
    role: str
    qname: str
    qtype: str
    url: str


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One exit session: a label, a session token, targeting, the fetches."""

    index: int
    session: str
    label: str
    country: str | None
    asn: int | None
    fetches: tuple[Fetch, ...]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One attempt through the gateway; the request log's line."""

    index: int
    session: str
    label: str
    role: str
    qname: str
    qtype: str
    url: str
    country: str | None
    asn: int | None
    attempt: int
    final: bool
    started: str
    elapsed_ms: float
    status: int | None
    headers: dict[str, str]
    exit_id: str | None
    error_code: str | None
    error: str | None
    exception: str | None
    outcome: str
    body_bytes: int
    body_excerpt: str | None = None
    schema: int = REQUEST_SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


@dataclass
class ProbeStats:
    """Running counts; ``on_progress`` receives this object after each session."""

    planned: int = 0
    tried: int = 0
    completed: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "tried": self.tried,
            "completed": self.completed,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


@dataclass(frozen=True)
class Credentials:
    """The password, read from the environment; never shown (see Secret)."""

    secret: Secret

    @classmethod
    def from_env(
        cls, spec: ProxySpec, environ: Mapping[str, str] | None = None
    ) -> Credentials:
        env = os.environ if environ is None else environ
        value = env.get(spec.password_env, "")
        if not value:
            raise ConfigError(
                f"the proxy password is read from the environment variable "
                f"{spec.password_env}, which is not set"
            )
        return cls(Secret(value))


def fetchable(tests: Sequence[PlannedTest]) -> tuple[PlannedTest, ...]:
    """The tests a web fetch can carry: unique-label names with A/AAAA."""
    return tuple(t for t in tests if t.unique and t.qtype in FETCH_QTYPES)


def url_for(qname: str, port: int) -> str:
    host = qname.rstrip(".")
    return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"


def plan_session(
    index: int, tests: Sequence[PlannedTest], spec: ProxySpec
) -> SessionPlan:
    """Session ``index``: fresh label and token; countries and ASNs in turn."""
    label = secrets.token_hex(6)
    # Bright Data: session values must be alphanumeric (proxy.md §1.1).
    session = secrets.token_hex(4)
    country = spec.countries[index % len(spec.countries)] if spec.countries else None
    asn = spec.asns[index % len(spec.asns)] if spec.asns else None
    fetches = tuple(
        Fetch(t.role, t.qname(label), t.qtype, url_for(t.qname(label), spec.port))
        for t in tests
    )
    return SessionPlan(index, session, label, country, asn, fetches)


def proxy_authorization(spec: ProxySpec, plan: SessionPlan, creds: Credentials) -> str:
    """``Basic base64(user:password)`` (RFC 7617 §2) for this session."""
    values = dict(spec.params)
    values["session"] = plan.session
    values["country"] = plan.country or ""
    values["asn"] = str(plan.asn) if plan.asn else ""
    username = render(spec.username, values)
    password = render(spec.password, {**values, "secret": creds.secret.reveal()})
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class RateLimiter:
    """At most ``rate`` request starts per second, spread evenly (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class Prober:
    """Drives exit sessions through one gateway; writes every attempt."""

    def __init__(
        self,
        spec: ProxySpec,
        creds: Credentials,
        tests: Sequence[PlannedTest],
        out: IO[str],
        on_progress: Callable[[ProbeStats], None] | None = None,
    ) -> None:
        self.spec = spec
        self.creds = creds
        self.tests = fetchable(tests)
        if not self.tests:
            raise ProxyError(
                "no test names to fetch: the proxy backend fetches valid, bogus, "
                "sentinel and algorithm names (A/AAAA); the [tests] section has none"
            )
        self.out = out
        self.on_progress = on_progress
        self.stats = ProbeStats()
        self.limiter = RateLimiter(spec.rate)

    async def run(self, sessions: int) -> ProbeStats:
        self.stats.planned = sessions
        counter = iter(range(sessions))
        workers = min(self.spec.concurrency, sessions)
        # One connection per request: unique hosts never share a pooled
        # connection anyway (aiohttp keys pools by host, proxy.md §5).
        connector = aiohttp.TCPConnector(limit=workers, force_close=True)
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as client:
            await asyncio.gather(
                *(self._worker(client, counter) for _ in range(workers))
            )
        return self.stats

    async def _worker(
        self, client: aiohttp.ClientSession, counter: Iterator[int]
    ) -> None:
        for index in counter:
            plan = plan_session(index, self.tests, self.spec)
            await self.run_session(client, plan)

    async def run_session(
        self, client: aiohttp.ClientSession, plan: SessionPlan
    ) -> list[str]:
        """Fetch every name of the session; return the final outcomes."""
        self.stats.tried += 1
        auth = proxy_authorization(self.spec, plan, self.creds)
        outcomes: list[str] = []
        hard: str | None = None
        for fetch in plan.fetches:
            if hard is not None:
                self._write(_skipped(plan, fetch, hard))
                outcomes.append(po.SKIPPED)
                continue
            outcome = await self._fetch(client, plan, fetch, auth)
            outcomes.append(outcome)
            if outcome in po.HARD_FAILURES:
                hard = f"skipped after {outcome} on {fetch.role}"
        self.stats.outcomes.update(outcomes)
        if any(o in (po.OK, po.DNS_ERROR) for o in outcomes):
            self.stats.completed += 1
        else:
            self.stats.failed += 1
        self.out.flush()
        if self.on_progress is not None:
            self.on_progress(self.stats)
        return outcomes

    async def _fetch(
        self,
        client: aiohttp.ClientSession,
        plan: SessionPlan,
        fetch: Fetch,
        auth: str,
    ) -> str:
        attempt = 0
        while True:
            attempt += 1
            await self.limiter.wait()
            record, retry, delay = await self._attempt(
                client, plan, fetch, auth, attempt
            )
            self._write(record)
            self.stats.requests += 1
            if not retry:
                return record.outcome
            self.stats.retries += 1
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        client: aiohttp.ClientSession,
        plan: SessionPlan,
        fetch: Fetch,
        auth: str,
        attempt: int,
    ) -> tuple[RequestRecord, bool, float]:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        headers = {
            "Proxy-Authorization": auth,
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
        }
        status: int | None = None
        got: dict[str, str] = {}
        body = b""
        exception: str | None = None
        verdict: po.Verdict | None = None
        error: str | None = None
        try:
            async with client.get(
                fetch.url,
                proxy=self.spec.gateway,
                headers=headers,
                allow_redirects=False,
            ) as response:
                status = response.status
                got = {k.lower(): v for k, v in response.headers.items()}
                body = await response.content.read(MAX_BODY)
            verdict = po.judge(status, got, self.spec, attempt)
        except TimeoutError:
            exception, outcome = "TimeoutError", po.TIMEOUT
            error = f"no answer within {self.spec.timeout:g} s"
        except aiohttp.ClientProxyConnectionError as exc:
            exception, outcome = type(exc).__name__, po.GATEWAY_UNREACHABLE
            error = self._safe(exc)
        except aiohttp.ServerDisconnectedError as exc:
            exception, outcome = type(exc).__name__, po.DISCONNECTED
            error = self._safe(exc)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: aiohttp rejects some malformed answers (a bad header
            # line) with it; one odd response must not end the campaign.
            exception, outcome = type(exc).__name__, po.CLIENT_ERROR
            error = self._safe(exc)
        retry, delay = False, 0.0
        if verdict is not None:
            outcome, retry = verdict.outcome, verdict.retry
            error = verdict.error_text
            delay = po.retry_after(
                got, self.spec.retry_delay * 2 ** (attempt - 1), self.spec.timeout
            )
        excerpt = None
        if status is not None and status >= 400 and body:
            excerpt = self._safe(body[:MAX_ERROR_BODY].decode("utf-8", "replace"))
        record = RequestRecord(
            index=plan.index,
            session=plan.session,
            label=plan.label,
            role=fetch.role,
            qname=fetch.qname,
            qtype=fetch.qtype,
            url=fetch.url,
            country=plan.country,
            asn=plan.asn,
            attempt=attempt,
            final=not retry,
            started=started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            elapsed_ms=round((time.perf_counter() - clock) * 1000, 3),
            status=status,
            headers=got,
            exit_id=verdict.exit_id if verdict else None,
            error_code=verdict.error_code if verdict else None,
            error=error,
            exception=exception,
            outcome=outcome,
            body_bytes=len(body),
            body_excerpt=excerpt,
        )
        return record, retry, delay

    def _safe(self, value: object) -> str:
        """Text of an exception or body with the password (and its Basic
        encoding, should a provider echo it) removed."""
        text = str(value)
        secret = self.creds.secret.reveal()
        return redact(text, secret, base64.b64encode(secret.encode()).decode())

    def _write(self, record: RequestRecord) -> None:
        self.out.write(record.to_json() + "\n")


def _skipped(plan: SessionPlan, fetch: Fetch, reason: str) -> RequestRecord:
    return RequestRecord(
        index=plan.index,
        session=plan.session,
        label=plan.label,
        role=fetch.role,
        qname=fetch.qname,
        qtype=fetch.qtype,
        url=fetch.url,
        country=plan.country,
        asn=plan.asn,
        attempt=0,
        final=True,
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        elapsed_ms=0.0,
        status=None,
        headers={},
        exit_id=None,
        error_code=None,
        error=reason,
        exception=None,
        outcome=po.SKIPPED,
        body_bytes=0,
    )


# -- the campaign ----------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRun:
    directory: Path
    file: Path
    stats: ProbeStats


@dataclass(frozen=True)
class JoinSources:
    """Where the join finds the server side's logs (recorded in the manifest)."""

    query_log: Path | None
    http_log: Path | None


def run_proxy_campaign(
    directory: Path,
    *,
    name: str,
    spec: ProxySpec,
    creds: Credentials,
    tests: Sequence[PlannedTest],
    zone: str,
    sources: JoinSources,
    sessions: int | None = None,
    scenario_path: Path | None = None,
    scenario_text: str | None = None,
    scenario_sha256: str | None = None,
    on_progress: Callable[[ProbeStats], None] | None = None,
) -> ProxyRun:
    """Run ``sessions`` exit sessions (default: the spec's) into a campaign.

    The manifest is written before the first request and again at the end,
    with the counts; the request log is flushed after every session, so an
    interrupted run keeps every attempt it made.
    """
    count = sessions if sessions is not None else spec.sessions
    manifest = open_manifest(
        directory, "proxy", name, scenario_path, scenario_text, scenario_sha256
    )
    started = datetime.now(UTC)
    file = directory / REQUESTS_DIR / f"requests-{started:%Y%m%dT%H%M%S%fZ}.jsonl"
    file.parent.mkdir(parents=True, exist_ok=True)
    tests = fetchable(tests)
    entry: dict[str, Any] = {
        "started": now_iso(),
        "file": str(file.relative_to(directory)),
        "sessions": count,
        "finished": None,
        "stats": None,
    }
    manifest.entries.append(entry)
    manifest.roles.update({t.role: t.role for t in tests})
    manifest.extra["zone"] = zone
    manifest.extra["proxy"] = describe(spec, sources)
    save_manifest(directory, manifest)
    with file.open("a", encoding="utf-8") as out:
        prober = Prober(spec, creds, tests, out, on_progress)
        try:
            stats = asyncio.run(prober.run(count))
        finally:
            entry["finished"] = now_iso()
            entry["stats"] = prober.stats.as_dict()
            save_manifest(directory, manifest)
    return ProxyRun(directory, file, stats)


def describe(spec: ProxySpec, sources: JoinSources) -> dict[str, Any]:
    """The campaign's proxy settings for the manifest: no password, only its
    variable's name."""
    return {
        "gateway": spec.gateway,
        "username": spec.username,
        "password_env": spec.password_env,
        "countries": list(spec.countries),
        "asns": list(spec.asns),
        "exit_id_headers": list(spec.exit_id_headers),
        "provider_resolvers": list(spec.provider_resolvers),
        "gate_codes": list(spec.gate_codes),
        "dns_fail_on": [r.describe() for r in spec.dns_fail_on],
        "retry_on": [r.describe() for r in spec.retry_on],
        "query_log": str(sources.query_log) if sources.query_log else None,
        "http_log": str(sources.http_log) if sources.http_log else None,
    }
