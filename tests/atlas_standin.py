"""A local stand-in for the RIPE Atlas REST API v2 (aiohttp, HTTPS on loopback).

It implements the endpoints rootcanary uses, with the real response and
error shapes (atlas.md §1, §2):

* ``POST /api/v2/measurements/``: create; ``{"measurements": [ids]}``;
  400 with ``errors[].source.pointer`` for bad fields, the per-measurement
  probe limit and the account's concurrency limit; 403 for a bad key;
* ``GET /api/v2/measurements/{id}/``, ``GET /api/v2/measurements/my/``
  (filters ``tags``, ``status__in``; pages with ``next``);
* ``GET /api/v2/measurements/{id}/results`` with inclusive ``start``/``stop``;
* ``DELETE /api/v2/measurements/{id}``: stop;
* ``GET /api/v2/probes/`` (filters ``status``, ``country_code``, ``asn_v4``,
  ``tags``; pages).

Faults can be injected per request (429 with Retry-After, 5xx, "create and
then answer 502", "create and then never answer"), and the server's clock can
be moved forward. Results are generated deterministically from the
measurement, its probes and the clock, with real DNS wire-format abufs.

HTTPS with a certificate from a throw-away CA (made with cryptography) is
used rather than patching cousteau's ``build_url`` (which hard-codes
``https://``): the client code under test then runs exactly as it does
against atlas.ripe.net, only ``server=`` and ``verify=`` differ.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

STATUS_NAMES = {
    0: "Specified",
    1: "Scheduled",
    2: "Ongoing",
    4: "Stopped",
    5: "Forced to stop",
    6: "No suitable probes",
    7: "Failed",
}
QUERY_TYPES = {
    "A", "AAAA", "ANY", "CNAME", "DNSKEY", "DS", "MX", "NS", "NSEC", "PTR",
    "RRSIG", "SOA", "TXT", "SRV", "NAPTR", "TLSA",
}  # fmt: skip
BODY = web.RequestKey("body", object)
SOURCE_TYPES = {"area", "country", "prefix", "asn", "probes", "msm", "region"}


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def make_probes(count: int, disconnected_every: int = 10) -> list[dict[str, Any]]:
    """Probe objects as ``GET /api/v2/probes/`` returns them."""
    countries = ["NL", "DE", "US", "JP"]
    out = []
    for index in range(count):
        pid = 1000 + index
        tags = [{"name": "System: IPv4 Works", "slug": "system-ipv4-works"}]
        if index % 3 == 0:
            tags.append({"name": "System: IPv6 Works", "slug": "system-ipv6-works"})
        if index % 7 == 0:
            tags.append({"name": "System: Anchor", "slug": "system-anchor"})
        connected = disconnected_every == 0 or index % disconnected_every != 5
        out.append(
            {
                "id": pid,
                "asn_v4": 64500 + index % 5,
                "asn_v6": None,
                "country_code": countries[index % len(countries)],
                "prefix_v4": f"198.51.{index // 250}.0/24",
                "address_v4": f"198.51.{index // 250}.{index % 250 + 1}",
                "status": {
                    "id": 1 if connected else 2,
                    "name": "Connected" if connected else "Disconnected",
                    "since": "2026-11-01T00:00:00Z",
                },
                "tags": tags,
                "is_anchor": index % 7 == 0,
                "is_public": True,
                "type": "Probe",
            }
        )
    return out


@dataclass
class Fault:
    """An injected misbehaviour for the next ``times`` matching requests.

    ``action``: ``"status"`` answers ``status`` at once; ``"after"`` carries
    the request out, then answers ``status``; ``"hang-after"`` carries it out
    and never answers.
    """

    method: str
    path: str  # regular expression on the path
    action: str = "status"
    status: int = 503
    times: int = 1
    retry_after: str | None = None
    skip: int = 0  # let this many matching requests through first


@dataclass
class Measurement:
    id: int
    owner: str
    definition: dict[str, Any]
    probes: list[int]
    created: int
    start: int
    stop: int | None
    oneoff: bool
    stopped: int | None = None
    requested: int = 0

    @property
    def interval(self) -> int:
        return int(self.definition.get("interval") or 240)

    def status(self, now: float, oneoff_seconds: float) -> int:
        if not self.probes:
            return 6
        if self.stopped is not None and now >= self.stopped:
            return 4
        if now < self.start:
            return 1
        if self.oneoff:
            return 2 if now < self.start + oneoff_seconds else 4
        if self.stop is not None and now >= self.stop:
            return 4
        return 2


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class StandIn:
    """The stand-in server; ``start()`` it, ``server`` is ``127.0.0.1:PORT``."""

    cert_file: Path
    key_file: Path
    keys: set[str] = field(default_factory=lambda: {"test-key"})
    probe_catalogue: list[dict[str, Any]] = field(default_factory=list)
    max_probes: int = 1000
    max_concurrent: int = 100
    oneoff_seconds: float = 300.0
    #: Probe id -> seconds after its timestamp before a result is visible.
    late: dict[int, int] = field(default_factory=dict)
    offset: float = 0.0  # the server clock is time.time() + offset
    frozen: float | None = None
    query_types: set[str] = field(default_factory=lambda: set(QUERY_TYPES))

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.measurements: dict[int, Measurement] = {}
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.max_running_seen = 0
        self._next_id = 5_000_001
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self.port = 0

    # -- control (from the test's thread) -----------------------------------------

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def now(self) -> float:
        if self.frozen is not None:
            return self.frozen + self.offset
        return time.time() + self.offset

    def freeze(self) -> None:
        """Stop the clock (it then moves only with :meth:`advance`)."""
        with self.lock:
            self.frozen = time.time()

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def requests(self, method: str | None = None, path: str = "") -> list[Logged]:
        with self.lock:
            return [
                item
                for item in self.log
                if (method is None or item.method == method)
                and re.search(path, item.path)
            ]

    def created(self) -> list[Measurement]:
        with self.lock:
            return sorted(self.measurements.values(), key=lambda m: m.id)

    def start(self) -> StandIn:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="atlas-stand-in", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("the stand-in server did not start")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._release is not None:
            loop.call_soon_threadsafe(self._release.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        self._loop = self._thread = None

    async def _serve(self) -> None:
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        measurements = "/api/v2/measurements"
        app.router.add_post(f"{measurements}/", self._create)
        app.router.add_post(f"{measurements}/my/", self._create)
        app.router.add_get(f"{measurements}/my/", self._list_mine)
        app.router.add_get(measurements + "/{id:\\d+}/", self._get)
        app.router.add_get(measurements + "/{id:\\d+}", self._get)
        app.router.add_delete(measurements + "/{id:\\d+}/", self._delete)
        app.router.add_delete(measurements + "/{id:\\d+}", self._delete)
        app.router.add_get(measurements + "/{id:\\d+}/results", self._results)
        app.router.add_get(measurements + "/{id:\\d+}/results/", self._results)
        app.router.add_get("/api/v2/probes/", self._probes)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    # -- plumbing -------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Any
    ) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            text = await request.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        request[BODY] = body
        entry = Logged(request.method, request.path, dict(request.query), body)
        with self.lock:
            self.log.append(entry)
            fault = self._take_fault(request)
        if fault is not None and fault.action == "status":
            response = self._fault_response(fault)
        else:
            response = await handler(request)
            if fault is not None and fault.action == "after":
                response = self._fault_response(fault)
            elif fault is not None and fault.action == "hang-after":
                assert self._release is not None
                await self._release.wait()
        entry.status = response.status
        return response

    def _take_fault(self, request: web.Request) -> Fault | None:
        for fault in self.faults:
            if fault.method == request.method and re.search(fault.path, request.path):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: Fault) -> web.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status == 201:
            # A success without usable ids (a truncated or mangled answer).
            return web.json_response({"measurements": "?"}, status=201)
        if fault.status == 429:
            return _error(
                429, "Too Many Requests", "Request was throttled.", headers=headers
            )
        if fault.status == 502:
            # What a front-end proxy answers: HTML, not the API's JSON.
            return web.Response(
                status=502,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
                headers=headers,
            )
        return _error(
            fault.status, "Server Error", "A server error occurred.", headers=headers
        )

    def _owner(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Key "):
            return header[4:].strip()
        return request.query.get("key")

    def _auth(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        key = self._owner(request)
        if key is None:
            return None, _error(
                403, "Forbidden", "Authentication credentials were not provided.", 104
            )
        if key not in self.keys:
            return None, _error(
                403, "Forbidden", "The provided API key does not exist", 104
            )
        return key, None

    # -- measurements --------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        owner, denied = self._auth(request)
        if denied:
            return denied
        assert owner is not None
        body = request[BODY]
        with self.lock:
            problems = self._validate(body)
            if problems:
                return _bad_request(problems)
            assert isinstance(body, dict)
            now = self.now()
            running = self._running(owner, now)
            wanted = len(body["definitions"])
            if running + wanted > self.max_concurrent:
                return _bad_request(
                    [
                        (
                            "/definitions",
                            f"You have {running} running measurements; at most "
                            f"{self.max_concurrent} may run at the same time.",
                        )
                    ]
                )
            probes = self._assign(body["probes"])
            start = int(body.get("start_time") or now)
            ids = []
            for definition in body["definitions"]:
                msm = Measurement(
                    id=self._next_id,
                    owner=owner,
                    definition=definition,
                    probes=probes,
                    created=int(now),
                    start=start,
                    stop=body.get("stop_time"),
                    oneoff=bool(body.get("is_oneoff")),
                    requested=sum(int(s["requested"]) for s in body["probes"]),
                )
                self.measurements[msm.id] = msm
                ids.append(msm.id)
                self._next_id += 1
            self.max_running_seen = max(
                self.max_running_seen, self._running(owner, now)
            )
        return web.json_response({"measurements": ids}, status=201)

    def _validate(self, body: Any) -> list[tuple[str, str]]:
        if not isinstance(body, dict):
            return [("/", "JSON parse error.")]
        problems: list[tuple[str, str]] = []
        definitions = body.get("definitions")
        if not isinstance(definitions, list) or not definitions:
            problems.append(("/definitions", "This field is required."))
            definitions = []
        for index, item in enumerate(definitions):
            where = f"/definitions/{index}"
            if not isinstance(item, dict):
                problems.append((where, "Expected a dictionary."))
                continue
            for name in ("description", "type", "af"):
                if name not in item:
                    problems.append((f"{where}/{name}", "This field is required."))
            if item.get("af") not in (4, 6, None):
                problems.append((f"{where}/af", "Must be 4 or 6."))
            if item.get("type") != "dns":
                continue
            for name in ("query_class", "query_type", "query_argument"):
                if name not in item:
                    problems.append((f"{where}/{name}", "This field is required."))
            if item.get("query_type") not in self.query_types | {None}:
                problems.append((f"{where}/query_type", "Not a valid query type."))
            argument = str(item.get("query_argument", ""))
            if "$" in argument and not item.get("use_macros"):
                problems.append(
                    (
                        f"{where}/query_argument",
                        "Macros are used but use_macros is off.",
                    )
                )
            size = item.get("udp_payload_size", 512)
            if not isinstance(size, int) or not 512 <= size <= 4096:
                problems.append(
                    (f"{where}/udp_payload_size", "Must be between 512 and 4096.")
                )
            spread = item.get("spread")
            if spread is not None and (not isinstance(spread, int) or spread > 400):
                problems.append((f"{where}/spread", "Must be at most 400."))
            if item.get("protocol", "UDP") not in ("UDP", "TCP"):
                problems.append((f"{where}/protocol", "Must be UDP or TCP."))
        sources = body.get("probes")
        if not isinstance(sources, list) or not sources:
            problems.append(("/probes", "This field is required."))
            sources = []
        total = 0
        for index, source in enumerate(sources):
            where = f"/probes/{index}"
            if not isinstance(source, dict) or source.get("type") not in SOURCE_TYPES:
                problems.append((f"{where}/type", "Not a valid probe source type."))
                continue
            requested = source.get("requested")
            if not isinstance(requested, int) or requested < 1:
                problems.append((f"{where}/requested", "Must be a positive integer."))
                continue
            total += requested
            if total > self.max_probes:
                problems.append(
                    (
                        f"{where}/requested",
                        f"A measurement can have at most {self.max_probes} probes.",
                    )
                )
        return problems

    def _running(self, owner: str, now: float) -> int:
        return sum(
            1
            for m in self.measurements.values()
            if m.owner == owner and m.status(now, self.oneoff_seconds) in (0, 1, 2)
        )

    def _assign(self, sources: list[dict[str, Any]]) -> list[int]:
        chosen: list[int] = []
        for source in sources:
            kind, value, requested = (
                source["type"],
                source["value"],
                source["requested"],
            )
            if kind == "probes":
                pool = [int(v) for v in str(value).split(",") if v.strip()]
            elif kind == "msm":
                pool = list(self.measurements[int(value)].probes)
            else:
                pool = [
                    p["id"]
                    for p in self.probe_catalogue
                    if p["status"]["id"] == 1
                    and _source_matches(p, kind, value)
                    and _tags_match(p, source.get("tags") or {})
                ]
            pool = [p for p in pool if p not in chosen]
            chosen.extend(pool[:requested])
        return chosen

    def _view(self, msm: Measurement, now: float) -> dict[str, Any]:
        status = msm.status(now, self.oneoff_seconds)
        item = {
            "id": msm.id,
            "type": "dns",
            "af": msm.definition.get("af"),
            "description": msm.definition.get("description"),
            "tags": list(msm.definition.get("tags") or []),
            "query_argument": msm.definition.get("query_argument"),
            "query_type": msm.definition.get("query_type"),
            "is_oneoff": msm.oneoff,
            "interval": None if msm.oneoff else msm.interval,
            "creation_time": msm.created,
            "start_time": msm.start,
            "stop_time": msm.stopped or msm.stop,
            "status": {"id": status, "name": STATUS_NAMES[status], "when": int(now)},
            "participant_count": len(msm.probes),
            "probes_requested": msm.requested,
            "probes_scheduled": len(msm.probes),
            "is_public": bool(msm.definition.get("is_public", True)),
            "result": f"https://{self.server}/api/v2/measurements/{msm.id}/results/",
        }
        return item

    async def _get(self, request: web.Request) -> web.Response:
        msm_id = int(request.match_info["id"])
        with self.lock:
            msm = self.measurements.get(msm_id)
            if msm is None:
                return _error(
                    404, "Not Found", "No Measurement matches the given query."
                )
            return web.json_response(self._view(msm, self.now()))

    async def _list_mine(self, request: web.Request) -> web.Response:
        owner, denied = self._auth(request)
        if denied:
            return denied
        query = request.query
        tags = [t for t in query.get("tags", "").split(",") if t]
        statuses = [int(s) for s in query.get("status__in", "").split(",") if s]
        with self.lock:
            now = self.now()
            items = [
                self._view(m, now)
                for m in sorted(self.measurements.values(), key=lambda m: m.id)
                if m.owner == owner
            ]
        items = [i for i in items if all(t in i["tags"] for t in tags)]
        if statuses:
            items = [i for i in items if i["status"]["id"] in statuses]
        return web.json_response(self._page(request, items))

    def _page(
        self, request: web.Request, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        size = min(500, int(request.query.get("page_size", "50")))
        page = int(request.query.get("page", "1"))
        chunk = items[(page - 1) * size : page * size]
        following = None
        if page * size < len(items):
            query = dict(request.query)
            query["page"] = str(page + 1)
            text = "&".join(f"{k}={v}" for k, v in query.items())
            following = f"https://{self.server}{request.path}?{text}"
        return {
            "count": len(items),
            "next": following,
            "previous": None,
            "results": chunk,
        }

    async def _delete(self, request: web.Request) -> web.Response:
        owner, denied = self._auth(request)
        if denied:
            return denied
        msm_id = int(request.match_info["id"])
        with self.lock:
            msm = self.measurements.get(msm_id)
            if msm is None:
                return _error(
                    404, "Not Found", "No Measurement matches the given query."
                )
            if msm.owner != owner:
                return _error(
                    403,
                    "Forbidden",
                    "You do not have permission to perform this action.",
                )
            now = self.now()
            if msm.status(now, self.oneoff_seconds) not in (0, 1, 2):
                return _bad_request([("/", "This measurement is not running.")])
            msm.stopped = int(now)
        return web.Response(status=204)

    async def _results(self, request: web.Request) -> web.Response:
        msm_id = int(request.match_info["id"])
        start = int(request.query["start"]) if "start" in request.query else None
        stop = int(request.query["stop"]) if "stop" in request.query else None
        with self.lock:
            msm = self.measurements.get(msm_id)
            if msm is None:
                return _error(
                    404, "Not Found", "No Measurement matches the given query."
                )
            rows = self.results_of(msm, self.now())
        rows = [
            r
            for r in rows
            if (start is None or r["timestamp"] >= start)
            and (stop is None or r["timestamp"] <= stop)
        ]
        return web.json_response(rows)

    def results_of(self, msm: Measurement, now: float) -> list[dict[str, Any]]:
        """Every result the measurement has produced and uploaded by ``now``."""
        end = now
        if msm.stopped is not None:
            end = min(end, msm.stopped)
        if msm.stop is not None:
            end = min(end, msm.stop)
        if msm.oneoff:
            rounds = [msm.start] if msm.start <= end else []
        else:
            rounds = list(range(msm.start, int(end) + 1, msm.interval))
        out = []
        for when in rounds:
            for pid in msm.probes:
                # Probes report at the same second in groups of three, so
                # results share timestamps (start and stop are inclusive).
                stamp = when + pid % 3
                if stamp > end or stamp + self.late.get(pid, 0) > now:
                    continue
                out.append(_result(msm, pid, stamp))
        return out

    # -- probes --------------------------------------------------------------------

    async def _probes(self, request: web.Request) -> web.Response:
        query = request.query
        items = list(self.probe_catalogue)
        if "status" in query:
            items = [p for p in items if p["status"]["id"] == int(query["status"])]
        if "country_code" in query:
            items = [p for p in items if p["country_code"] == query["country_code"]]
        if "asn_v4" in query:
            items = [p for p in items if p["asn_v4"] == int(query["asn_v4"])]
        if "tags" in query:
            wanted = [t for t in query["tags"].split(",") if t]
            items = [p for p in items if all(t in _slugs(p) for t in wanted)]
        return web.json_response(self._page(request, items))


def _error(
    status: int,
    title: str,
    detail: str,
    code: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"status": status, "title": title, "detail": detail}
    if code is not None:
        error["code"] = code
    if errors is not None:
        error["errors"] = errors
    return web.json_response({"error": error}, status=status, headers=headers)


def _bad_request(problems: list[tuple[str, str]]) -> web.Response:
    return _error(
        400,
        "Bad Request",
        "There were problems with your request",
        102,
        [
            {"source": {"pointer": where}, "detail": detail}
            for where, detail in problems
        ],
    )


def _slugs(probe: dict[str, Any]) -> set[str]:
    return {t["slug"] for t in probe.get("tags", [])}


def _tags_match(probe: dict[str, Any], tags: dict[str, list[str]]) -> bool:
    slugs = _slugs(probe)
    return all(t in slugs for t in tags.get("include", [])) and not any(
        t in slugs for t in tags.get("exclude", [])
    )


def _source_matches(probe: dict[str, Any], kind: str, value: Any) -> bool:
    if kind == "area":
        return value == "WW" or len(str(value)) % 5 == probe["id"] % 5
    if kind == "country":
        return bool(probe["country_code"] == value)
    if kind == "asn":
        return bool(probe["asn_v4"] == int(value))
    if kind == "prefix":
        return ipaddress.ip_address(probe["address_v4"]) in ipaddress.ip_network(value)
    return True


def _expand(argument: str, pid: int, stamp: int, resolver: int) -> str:
    seed = f"{pid}/{stamp}/{resolver}".encode()
    random_hex = hashlib.sha256(seed).hexdigest()[:16]
    return (
        argument.replace("$p", str(pid))
        .replace("$t", str(stamp))
        .replace("$r", random_hex)
    )


def _result(msm: Measurement, pid: int, stamp: int) -> dict[str, Any]:
    definition = msm.definition
    af = int(definition.get("af", 4))
    resolvers = ["192.168.1.1", "9.9.9.9"] if af == 4 else ["fe80::1", "2620:fe::fe"]
    resultset = []
    for index, resolver in enumerate(resolvers):
        qname = _expand(str(definition["query_argument"]), pid, stamp, index)
        if not qname.endswith("."):
            qname += "."
        query = dns.message.make_query(
            qname, str(definition["query_type"]), want_dnssec=True, use_edns=0
        )
        # A fixed message id: the same measurement gives the same results.
        query.id = int(hashlib.sha256(qname.encode()).hexdigest()[:4], 16)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        if "bogus" in qname:
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif definition["query_type"] in ("A", "AAAA"):
            reply.flags |= dns.flags.AD
            value = "192.0.2.80" if definition["query_type"] == "A" else "2001:db8::80"
            reply.answer.append(
                dns.rrset.from_text(qname, 60, "IN", definition["query_type"], value)
            )
        wire = reply.to_wire()
        resultset.append(
            {
                "time": stamp,
                "lts": 17,
                "subid": index + 1,
                "submax": len(resolvers),
                "dst_addr": resolver,
                "af": af,
                "src_addr": "192.168.1.23" if af == 4 else "2001:db8:1::23",
                "proto": definition.get("protocol", "UDP"),
                "result": {
                    "rt": 10.0 + (pid % 50) + index,
                    "size": len(wire),
                    "abuf": base64.b64encode(wire).decode(),
                    "ID": reply.id,
                    "ANCOUNT": len(reply.answer),
                    "QDCOUNT": 1,
                    "NSCOUNT": 0,
                    "ARCOUNT": 1,
                },
            }
        )
    return {
        "fw": 5080,
        "lts": 17,
        "msm_id": msm.id,
        "prb_id": pid,
        "timestamp": stamp,
        "type": "dns",
        "af": af,
        "from": f"198.51.100.{pid % 250}",
        "group_id": msm.id,
        "msm_name": "Tdig",
        "stored_timestamp": stamp + 5,
        "resultset": resultset,
    }
