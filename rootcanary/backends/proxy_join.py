"""The join: prober log + DNS query log + HTTP log -> observations.

All three carry the session's unique label (proxy.md §3): the prober wrote it
into every name it fetched, the query log has it in ``qname`` (in whatever
case the resolver sent, RFC 4343), the HTTP log in ``host``. Per session:

- the **exit** (observation ``probe``) is the web-log source address of its
  fetches; when nothing was fetched, the exit-id header (mapped to the address
  seen for that id in other sessions where possible);
- the **exit's resolver** (``resolver``) is the source that asked our server
  most often for the session's names, among sources outside the provider's
  own resolvers (``provider_resolvers``: the gateway's pre-check and any
  in-country resolving, proxy.md §1.2), which never count.

The ``rcode`` of each fetched name is derived from what was observed, never
guessed; ``basis`` in the observation says which rule applied. "The exit's
resolver asked" is checked for the name itself, and else for the session: a
validating resolver answers names below a wildcard (the sentinel names) from
its cache without asking us (RFC 8198 §5.3), so once the session shows which
resolver does the lookups, a name it did not ask for still tells its answer.

=============================================================  =============
fetched (a hit on our web server), the exit resolver asked     ``NOERROR``
fetched, only the session shows the exit resolver              ``NOERROR``
fetched, only provider resolvers asked in the session          null
not fetched, DNS error, the exit resolver asked for the name   ``SERVFAIL``
not fetched, DNS error not from the gateway, session resolver  ``SERVFAIL``
not fetched, a gateway error (``gate_codes``: its own lookup)  null
not fetched, DNS error, only provider resolvers asked          null
not fetched, DNS error, no query reached us                    null
a 2xx answer without a hit on our web server                   null
any other failure (timeout, 407, 5xx, skipped)                 null
=============================================================  =============

``SERVFAIL`` stands for any failed lookup: it becomes ``NXDOMAIN`` when every
answer our server gave the exit resolver for the name was NXDOMAIN, or the
rcode an RFC 9209 ``dns_error`` Proxy-Status names (§2.3.2). A failed lookup
of a name our server answered is what a validating resolver does with a
bogus name (RFC 4035 §5.5) and what an RFC 8509 sentinel gives (§2.2).

Records that cannot become observations are counted by reason, as are
malformed lines of every input.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rootcanary import names
from rootcanary.backends import proxy_outcome as po
from rootcanary.backends.proxy import REQUEST_SCHEMA, REQUESTS_DIR
from rootcanary.campaign import write_atomic
from rootcanary.errors import DataError
from rootcanary.observation import Observation, Tally, parse_time
from rootcanary.readers import lines
from rootcanary.scenario.proxy import DEFAULT_GATE_CODES

OBSERVATIONS_FILE = "observations/proxy.jsonl"


@dataclass(frozen=True, slots=True)
class Query:
    """One line of the query log that belongs to a session's name."""

    time: str
    src: str
    qtype: str
    rcode: str | None


@dataclass(frozen=True, slots=True)
class WebHit:
    time: str
    src: str
    dst: str | None
    via: str | None
    user_agent: str | None


@dataclass
class SessionData:
    """Everything the three logs say about one label."""

    label: str
    session: str
    index: int
    records: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, list[Query]] = field(default_factory=dict)
    hits: dict[str, list[WebHit]] = field(default_factory=dict)


@dataclass
class JoinResult:
    file: Path
    observations: int = 0
    sessions: int = 0
    requests: Tally = field(default_factory=Tally)
    queries: Tally = field(default_factory=Tally)
    hits: Tally = field(default_factory=Tally)
    unjoinable: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    rcodes: Counter[str] = field(default_factory=Counter)
    bases: Counter[str] = field(default_factory=Counter)
    provider_sources: Counter[str] = field(default_factory=Counter)
    exit_resolvers: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "observations": self.observations,
            "sessions": self.sessions,
            "requests_read": self.requests.read,
            "requests_skipped": dict(self.requests.skipped),
            "queries_read": self.queries.read,
            "queries_skipped": dict(self.queries.skipped),
            "hits_read": self.hits.read,
            "hits_skipped": dict(self.hits.skipped),
            "unjoinable": dict(sorted(self.unjoinable.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "rcodes": dict(sorted(self.rcodes.items())),
            "bases": dict(sorted(self.bases.items())),
        }


class ProviderNets:
    """The provider's own resolvers: addresses and prefixes."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def __contains__(self, address: object) -> bool:
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.networks)


# -- reading -------------------------------------------------------------------


def _json_lines(path: Path, tally: Tally) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON objects of a log (gzip or not); bad lines are counted by reason."""
    for where, value in lines.values(path, tally):
        if not isinstance(value, dict):
            tally.skip("not a JSON object", lines.describe(where))
            continue
        yield lines.describe(where), value


_RECORD_FIELDS = {
    "label": str,
    "session": str,
    "role": str,
    "qname": str,
    "outcome": str,
    "started": str,
    "headers": dict,
}


def read_requests(paths: Sequence[Path], result: JoinResult) -> dict[str, SessionData]:
    sessions: dict[str, SessionData] = {}
    for path in paths:
        for where, data in _json_lines(path, result.requests):
            bad = [
                k
                for k, kind in _RECORD_FIELDS.items()
                if not isinstance(data.get(k), kind)
            ]
            if data.get("schema") != REQUEST_SCHEMA:
                result.requests.skip("unknown request schema", where)
                continue
            if bad or data["outcome"] not in po.OUTCOMES:
                result.requests.skip(
                    f"bad request record ({', '.join(bad) or 'outcome'})", where
                )
                continue
            result.requests.ok()
            if not data.get("final", True):
                result.ignored["request attempts retried"] += 1
                continue
            label = data["label"].lower()
            session = sessions.get(label)
            if session is None:
                index = data.get("index")
                session = SessionData(
                    label, data["session"], index if isinstance(index, int) else 0
                )
                sessions[label] = session
            session.records.append(data)
    return sessions


def read_queries(
    paths: Sequence[Path],
    zone: str,
    sessions: dict[str, SessionData],
    result: JoinResult,
) -> None:
    """Attach query-log lines to the sessions their label belongs to."""
    for path in paths:
        for where, data in _json_lines(path, result.queries):
            qname, src = data.get("qname"), data.get("src")
            if qname is None and "drop" in data:
                result.queries.ok()
                result.ignored["queries dropped by the server"] += 1
                continue
            if not isinstance(qname, str) or not isinstance(src, str):
                result.queries.skip("query line without qname or src", where)
                continue
            result.queries.ok()
            found = _session_role(qname, zone, sessions, result, "queries")
            if found is None:
                continue
            session, role = found
            rcode = data.get("rcode")
            session.queries.setdefault(role, []).append(
                Query(
                    str(data.get("time", "")),
                    src,
                    str(data.get("qtype", "")),
                    rcode if isinstance(rcode, str) else None,
                )
            )


def read_hits(
    paths: Sequence[Path],
    zone: str,
    sessions: dict[str, SessionData],
    result: JoinResult,
) -> None:
    for path in paths:
        for where, data in _json_lines(path, result.hits):
            host, src = data.get("host"), data.get("src")
            if not isinstance(src, str):
                result.hits.skip("hit without src", where)
                continue
            result.hits.ok()
            if not isinstance(host, str) or not host:
                result.ignored["hits without a Host"] += 1
                continue
            found = _session_role(_strip_port(host), zone, sessions, result, "hits")
            if found is None:
                continue
            session, role = found
            session.hits.setdefault(role, []).append(
                WebHit(
                    str(data.get("time", "")),
                    src,
                    _text(data.get("dst")),
                    _text(data.get("via")),
                    _text(data.get("user_agent")),
                )
            )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def _session_role(
    name: str,
    zone: str,
    sessions: dict[str, SessionData],
    result: JoinResult,
    what: str,
) -> tuple[SessionData, str] | None:
    try:
        role = names.role_of(name, zone)
    except (ValueError, UnicodeError):
        role = None
    if role is None or role.label is None:
        result.ignored[f"{what} for names without a label under {zone}"] += 1
        return None
    session = sessions.get(role.label.lower())
    if session is None:
        result.ignored[f"{what} for labels not in this campaign"] += 1
        return None
    return session, role.role


# -- joining -------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    rcode: str | None
    error: str | None
    basis: str
    answers: tuple[str, ...] = ()
    ede: tuple[int, ...] = ()


def derive(
    record: dict[str, Any],
    hits: Sequence[WebHit],
    exit_queries: Sequence[Query],
    provider_queries: Sequence[Query],
    session_resolver: str | None,
    gate_codes: Collection[str] = DEFAULT_GATE_CODES,
) -> Derived:
    """The rcode one fetch tells, from what the three logs saw (module table).

    ``exit_queries`` are the exit resolvers' queries for this very name;
    ``session_resolver`` is the exit's resolver as seen on any name of the
    session. A validating resolver may answer a name below a wildcard from
    its cache without asking us (RFC 8198 §5.3, aggressive use of NSEC), so a
    name it did not ask for still tells its answer, once the session shows
    it is the resolver doing the lookups.
    """
    outcome = record["outcome"]
    code = record.get("error_code")
    detail = f" ({code})" if code else ""
    if hits:
        answers = tuple(sorted({h.dst for h in hits if h.dst}))
        if exit_queries:
            return Derived("NOERROR", None, "fetched", answers)
        if session_resolver is not None:
            return Derived("NOERROR", None, "fetched-resolver-cache", answers)
        return Derived(
            None,
            "fetched, but only the provider's resolvers asked for the session's "
            "names: the exit's resolver was not measured",
            "fetched-provider-dns",
        )
    if outcome == po.OK:
        return Derived(
            None,
            f"status {record.get('status')} without a hit on our web server: "
            "the answer was not ours (rewritten or intercepted?)",
            "answered-elsewhere",
        )
    if outcome == po.DNS_ERROR:
        gate = code in gate_codes
        if exit_queries or (session_resolver is not None and not gate):
            rcode, info = po.dns_error_params(_headers(record))
            if rcode is None:
                ours = {q.rcode for q in exit_queries}
                rcode = "NXDOMAIN" if ours == {"NXDOMAIN"} else "SERVFAIL"
            ede = (info,) if info is not None else ()
            basis = (
                "dns-error-exit-resolver"
                if exit_queries
                else ("dns-error-resolver-cache")
            )
            return Derived(rcode, None, basis, (), ede)
        if gate:
            return Derived(
                None,
                f"inconclusive: the gateway's own lookup failed{detail}; "
                "no exit was asked",
                "dns-error-gateway",
            )
        if provider_queries:
            return Derived(
                None,
                f"inconclusive: only the provider's resolvers asked{detail}",
                "dns-error-provider-only",
            )
        return Derived(
            None,
            f"inconclusive: DNS error{detail}, no query for the name reached "
            "our server",
            "dns-error-no-query",
        )
    text = record.get("error") or ""
    return Derived(
        None,
        f"{outcome}{detail}" + (f": {text}" if text else ""),
        outcome,
    )


def _headers(record: dict[str, Any]) -> dict[str, str]:
    headers = record.get("headers")
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _exit_resolver(session: SessionData, provider: ProviderNets) -> str | None:
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for queries in session.queries.values():
        for query in queries:
            if query.src in provider:
                continue
            counts[query.src] += 1
            first.setdefault(query.src, query.time)
            first[query.src] = min(first[query.src], query.time)
    if not counts:
        return None
    return min(counts, key=lambda src: (-counts[src], first[src], src))


def _web_exit(session: SessionData) -> str | None:
    hits = [hit for hits in session.hits.values() for hit in hits]
    return min(hits, key=lambda h: (h.time, h.src)).src if hits else None


def _header_exit(session: SessionData) -> str | None:
    for record in session.records:
        value = record.get("exit_id")
        if isinstance(value, str) and value:
            return value
    return None


def _failure_reason(session: SessionData) -> str:
    outcomes = Counter(
        f"{r['outcome']} {r.get('status') or ''} {r.get('error_code') or ''}".strip()
        for r in session.records
        if r["outcome"] != po.SKIPPED
    )
    worst = min(outcomes, key=lambda o: (-outcomes[o], o)) if outcomes else "skipped"
    return f"no exit identified ({' '.join(worst.split())})"


def join_campaign(
    directory: Path,
    *,
    zone: str,
    query_logs: Sequence[Path],
    http_logs: Sequence[Path],
    provider_resolvers: Iterable[str] = (),
    gate_codes: Collection[str] = DEFAULT_GATE_CODES,
) -> JoinResult:
    """Join a campaign's logs; write ``observations/proxy.jsonl`` atomically."""
    zone = names.absolute(zone)
    request_files = sorted((directory / REQUESTS_DIR).glob("requests-*.jsonl"))
    if not request_files:
        raise DataError(
            f"{directory}: no {REQUESTS_DIR}/requests-*.jsonl: run "
            "'rootcanary schedule --backend proxy' first"
        )
    for path in (*query_logs, *http_logs):
        if not path.is_file():
            raise DataError(f"{path}: no such log file")
    result = JoinResult(directory / OBSERVATIONS_FILE)
    sessions = read_requests(request_files, result)
    read_queries(query_logs, zone, sessions, result)
    read_hits(http_logs, zone, sessions, result)
    provider = ProviderNets(provider_resolvers)
    # An exit id seen with a web hit in one session names the same exit in
    # sessions where nothing was fetched (Bright Data ids are per peer, §1.3).
    exit_map: dict[str, str] = {}
    for session in sessions.values():
        web, header = _web_exit(session), _header_exit(session)
        if web and header:
            exit_map.setdefault(header, web)
    lines: list[str] = []
    ordered = sorted(
        sessions.values(), key=lambda s: (s.records[0]["started"], s.index)
    )
    for session in ordered:
        result.sessions += 1
        lines.extend(_observe(session, provider, exit_map, result, gate_codes))
    write_atomic(result.file, "".join(line + "\n" for line in lines))
    result.observations = len(lines)
    return result


def _observe(
    session: SessionData,
    provider: ProviderNets,
    exit_map: dict[str, str],
    result: JoinResult,
    gate_codes: Collection[str],
) -> Iterator[str]:
    resolver = _exit_resolver(session, provider)
    header = _header_exit(session)
    probe = _web_exit(session) or (exit_map.get(header) if header else None) or header
    if probe is None and resolver is not None:
        probe = f"session:{session.session}"
    if probe is None:
        result.unjoinable[_failure_reason(session)] += len(session.records)
        return
    if resolver:
        result.exit_resolvers[resolver] += 1
    for queries in session.queries.values():
        for query in queries:
            if query.src in provider:
                result.provider_sources[query.src] += 1
    for record in session.records:
        role = record["role"]
        queries = session.queries.get(role, [])
        exit_q = [q for q in queries if q.src not in provider]
        provider_q = [q for q in queries if q.src in provider]
        hits = session.hits.get(role, [])
        derived = derive(record, hits, exit_q, provider_q, resolver, gate_codes)
        result.rcodes[derived.rcode or "null"] += 1
        result.bases[derived.basis] += 1
        try:
            moment: datetime = parse_time(record["started"])
        except ValueError:
            result.unjoinable["request with a bad start time"] += 1
            continue
        observation = Observation(
            platform="proxy",
            measurement=role,
            probe=probe,
            resolver=resolver,
            af=_af(resolver),
            time=moment,
            qname=names.absolute(record["qname"]),
            qtype=str(record.get("qtype") or "A"),
            rcode=derived.rcode,
            ad=None,
            answers=derived.answers,
            ede=derived.ede,
            error=derived.error,
            role=role,
            extra={
                "session": session.session,
                "label": session.label,
                "basis": derived.basis,
                "outcome": record["outcome"],
                "status": record.get("status"),
                "error_code": record.get("error_code"),
                "exit_id": record.get("exit_id"),
                "asked_by": sorted({q.src for q in exit_q}),
                "provider_asked": sorted({q.src for q in provider_q}),
                "web_clients": sorted({h.src for h in hits}),
                "via": sorted({h.via for h in hits if h.via}),
                "headers": _headers(record),
            },
        )
        yield observation.to_json()


def _af(address: str | None) -> int | None:
    if address is None:
        return None
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None
