"""A local stand-in for a residential proxy gateway (Bright Data conventions).

Tests, benchmarks and demos cannot reach a commercial proxy network, so this
aiohttp server speaks its protocol on loopback (proxy.md §1):

- plain-HTTP forward proxying (absolute-form request lines), Basic
  ``Proxy-Authorization`` with a ``brd-customer-<id>-zone-<zone>[-key[-value]]``
  username; bad credentials get 407 ``client_10000``;
- username tokens ``session`` (sticky: one exit per session id, dropped after
  60 s idle), ``country`` and ``asn`` (pick among the exits that match; none
  gives 502 ``peer_30030``), ``dns-remote``;
- the super proxy's own pre-check lookup through a resolver of its own; a
  failure gives 502 ``target_40001`` "Could not resolve host" and no exit is
  contacted;
- forwarding to the session's exit, a real forward proxy such as squid, and
  relaying its answer with the exit id in ``x-brd-ip``;
- errors with ``x-brd-err-code``, ``x-brd-error``, ``x-brd-err-msg`` and an
  RFC 9209 ``Proxy-Status``.

Run it in a process of its own with ``python -m rootcanary.backends.proxy_standin
--listen 127.0.40.1:22225 --exit de:http://127.0.40.21:3128`` (password from
``ROOTCANARY_PROXY_PASSWORD``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
from aiohttp import web

from rootcanary.secrets import Secret

PROXY_NAME = "brd.superproxy.io"
SESSION_IDLE = 60.0  # seconds a sticky session outlives its last request (§1.5)
#: Username keys without a value (proxy.md §1.1).
BOOLEAN_KEYS = frozenset({"direct", "raw", "unblocker", "info", "const", "render"})
#: Hop-by-hop headers (RFC 9110 §7.6.1) and ones we must not relay.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
SYNTHETIC_BODY = b"synthetic exit\n"


@dataclass(frozen=True)
class Exit:
    """One exit node. ``upstream`` is a forward proxy to send requests through
    (``http://HOST:PORT``, e.g. squid), ``direct:HOST:PORT`` to connect to that
    web server itself whatever the name (no DNS at the exit), or None to answer
    200 without any upstream (a synthetic exit, for benchmarks)."""

    name: str
    upstream: str | None
    country: str = "zz"
    asn: int = 64496

    @property
    def exit_id(self) -> str:
        # Residential ids are an opaque r<32 hex> (proxy.md §1.3).
        return "r" + hashlib.md5(self.name.encode(), usedforsecurity=False).hexdigest()


@dataclass
class GatewayStats:
    requests: int = 0
    auth_failed: int = 0
    precheck_failed: int = 0
    no_peer: int = 0
    forwarded: int = 0
    throttled: int = 0
    sessions: int = 0


@dataclass(frozen=True)
class Username:
    customer: str
    zone: str
    options: dict[str, str] = field(default_factory=dict)


def parse_username(text: str) -> Username | None:
    """``brd-customer-<id>-zone-<zone>[-<key>[-<value>]]...`` (or ``lum-``)."""
    tokens = text.split("-")
    if len(tokens) < 5 or tokens[0] not in ("brd", "lum"):
        return None
    if tokens[1] != "customer" or tokens[3] != "zone":
        return None
    options: dict[str, str] = {}
    rest = tokens[5:]
    index = 0
    while index < len(rest):
        key = rest[index]
        if key in BOOLEAN_KEYS:
            options[key] = ""
            index += 1
            continue
        if index + 1 >= len(rest):
            return None
        options[key] = rest[index + 1]
        index += 2
    return Username(tokens[2], tokens[4], options)


def error_response(status: int, code: str, message: str) -> web.Response:
    """A gateway error in Bright Data's shape, x-brd-* and RFC 9209 (§1.4)."""
    kind = {
        407: "http_request_denied",
        429: "http_request_denied",
        502: "destination_unavailable",
        504: "connection_timeout",
    }.get(status, "proxy_internal_error")
    if code == "target_40001":
        kind = "dns_error"
    details = f"{code}: {message}".replace("\\", "\\\\").replace('"', '\\"')
    headers = {
        "x-brd-err-code": code,
        "x-brd-error": message,
        "x-brd-err-msg": f"{message} (code {code})",
        "Proxy-Status": (
            f'{PROXY_NAME}; received-status={status}; error="{kind}"; '
            f'details="{details}"'
        ),
    }
    if status == 407:
        headers["Proxy-Authenticate"] = 'Basic realm="Bright Data"'
    return web.Response(status=status, text=message + "\n", headers=headers)


class Gateway:
    """The stand-in's state and request handler."""

    def __init__(
        self,
        exits: Sequence[Exit],
        password: Secret,
        *,
        customer: str = "c_rootcanary",
        zone: str = "residential",
        precheck: tuple[str, int] | None = None,
        precheck_timeout: float = 3.0,
        upstream_timeout: float = 120.0,
        throttle_first: bool = False,
    ) -> None:
        self.exits = tuple(exits)
        self.password = password
        self.customer = customer
        self.zone = zone
        self.precheck = precheck
        self.precheck_timeout = precheck_timeout
        self.upstream_timeout = upstream_timeout
        #: Answer the first request of every session with 429 client_10110.
        self.throttle_first = throttle_first
        self.stats = GatewayStats()
        self._sessions: dict[str, tuple[Exit, float]] = {}
        self._throttled: set[str] = set()
        self._turn = 0
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.bound: list[tuple[str, int]] = []

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0),
            timeout=aiohttp.ClientTimeout(total=self.upstream_timeout),
            auto_decompress=False,
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # A client that gave up (the prober's timeout) cancels its upstream
        # request, so a dead exit holds nothing once the prober moved on.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=4096)
        await site.start()
        server = site._server
        sock = (getattr(server, "sockets", None) or [None])[0]
        name = sock.getsockname() if sock is not None else (host, port)
        self.bound = [(str(name[0]), int(name[1]))]
        return self.bound[0]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- request handling ----------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        if request.method == "CONNECT":
            return error_response(
                405, "policy_20130", "CONNECT is not offered by this stand-in"
            )
        user = self._authenticate(request.headers.get("Proxy-Authorization", ""))
        if user is None:
            self.stats.auth_failed += 1
            return error_response(
                407,
                "client_10000",
                "Invalid authentication: check credentials and retry",
            )
        session = user.options.get("session") or ""
        if self.throttle_first and session and session not in self._throttled:
            self._throttled.add(session)
            self.stats.throttled += 1
            response = error_response(429, "client_10110", "Too many requests")
            response.headers["Retry-After"] = "0"
            return response
        host = request.url.host
        if not host or not request.url.is_absolute():
            return error_response(400, "client_10050", "Absolute URL required")
        chosen = self._pick_exit(user, session)
        if chosen is None:
            self.stats.no_peer += 1
            return error_response(
                502, "peer_30030", "No peers available for the requested targeting"
            )
        if not await self._precheck(host):
            self.stats.precheck_failed += 1
            return error_response(502, "target_40001", f"Could not resolve host {host}")
        return await self._forward(request, chosen)

    def _authenticate(self, header: str) -> Username | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        name, sep, password = decoded.partition(":")
        user = parse_username(name)
        if not sep or user is None or password != self.password.reveal():
            return None
        if user.customer != self.customer or user.zone != self.zone:
            return None
        return user

    def _pick_exit(self, user: Username, session: str) -> Exit | None:
        now = time.monotonic()
        if session:
            known = self._sessions.get(session)
            if known is not None and now - known[1] <= SESSION_IDLE:
                self._sessions[session] = (known[0], now)
                return known[0]
        country = user.options.get("country")
        asn = user.options.get("asn")
        matching = [
            e
            for e in self.exits
            if (country is None or e.country == country.lower())
            and (asn is None or str(e.asn) == asn)
        ]
        if not matching:
            return None
        chosen = matching[self._turn % len(matching)]
        self._turn += 1
        if session:
            if len(self._sessions) > 10_000:
                self._expire(now)
            self._sessions[session] = (chosen, now)
            self.stats.sessions += 1
        return chosen

    def _expire(self, now: float) -> None:
        stale = [
            k for k, (_, seen) in self._sessions.items() if now - seen > SESSION_IDLE
        ]
        for key in stale:
            del self._sessions[key]

    async def _precheck(self, host: str) -> bool:
        """The super proxy resolves first, "only to check if domain is valid"
        (proxy.md §1.2); any failure ends the request here."""
        if self.precheck is None:
            return True
        query = dns.message.make_query(host, "A")
        try:
            answer = await dns.asyncquery.udp(
                query,
                self.precheck[0],
                port=self.precheck[1],
                timeout=self.precheck_timeout,
            )
        except (dns.exception.DNSException, OSError):
            return False
        return answer.rcode() == dns.rcode.NOERROR and bool(answer.answer)

    async def _forward(self, request: web.Request, chosen: Exit) -> web.StreamResponse:
        self.stats.forwarded += 1
        if chosen.upstream is None:
            return web.Response(
                body=SYNTHETIC_BODY, headers={"x-brd-ip": chosen.exit_id}
            )
        assert self._client is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        }
        url = str(request.url)
        proxy_url: str | None = chosen.upstream
        if chosen.upstream.startswith("direct:"):
            url = f"http://{chosen.upstream[7:]}{request.url.path_qs}"
            headers["Host"] = request.headers.get("Host", request.host)
            proxy_url = None
        try:
            async with self._client.request(
                request.method,
                url,
                proxy=proxy_url,
                headers=headers,
                data=await request.read() or None,
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                relayed = {
                    k: v
                    for k, v in upstream.headers.items()
                    if k.lower() not in HOP_BY_HOP
                }
                status = upstream.status
        except TimeoutError:
            return self._with_id(
                error_response(504, "peer_30010", "Peer did not answer in time"),
                chosen,
            )
        except aiohttp.ClientError:
            response = error_response(
                502, "peer_30000", "Failed to establish connection with peer"
            )
            response.headers["x-luminati-error"] = (
                "Proxy Error: server_error Failed to establish connection with peer"
            )
            return self._with_id(response, chosen)
        response = web.Response(status=status, body=body, headers=relayed)
        return self._with_id(response, chosen)

    @staticmethod
    def _with_id(response: web.Response, chosen: Exit) -> web.Response:
        response.headers["x-brd-ip"] = chosen.exit_id
        return response


# -- a process of its own (benchmarks, manual runs) ---------------------------


def _exit_arg(text: str) -> Exit:
    """``COUNTRY:URL`` or ``COUNTRY:synthetic``, optionally ``NAME=`` first."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = text, text
    country, _, upstream = rest.partition(":")
    return Exit(
        name,
        None if upstream in ("", "synthetic") else upstream,
        country=country.lower(),
    )


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, type=_hostport)
    parser.add_argument("--exit", action="append", type=_exit_arg, default=[])
    parser.add_argument("--precheck", type=_hostport, default=None)
    parser.add_argument("--customer", default="c_rootcanary")
    parser.add_argument("--zone", default="residential")
    parser.add_argument("--password-env", default="ROOTCANARY_PROXY_PASSWORD")
    args = parser.parse_args(argv)
    password = Secret(os.environ.get(args.password_env, ""))
    if not password:
        parser.error(f"set {args.password_env}")
    gateway = Gateway(
        args.exit or [Exit("synthetic", None)],
        password,
        customer=args.customer,
        zone=args.zone,
        precheck=args.precheck,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        host, port = await gateway.start(*args.listen)
        os.write(1, f"listening {host}:{port}\n".encode())
        await stop.wait()
        await gateway.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
