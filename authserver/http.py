"""The HTTP responder: answers on the addresses the test names point at.

In a proxy-network campaign the exit node fetches ``http://<test name>/``
after its resolver looked the name up; each hit here is logged as one JSON
line, which the join (``rootcanary fetch``) matches with the query log on the
unique label in the Host header::

    {"time": "2026-12-03T17:49:53.123456Z", "src": "198.51.100.7", "sport": 40312,
     "dst": "127.0.2.1", "dport": 80, "host": "1f2e3d4c5b6a.valid.canary.test",
     "method": "GET", "path": "/", "user_agent": "...", "via": "1.1 ...",
     "x_forwarded_for": "...", "status": 200}

It serves a permissive ``/robots.txt`` (RFC 9309 §2.2.2), because Bright Data
refuses targets whose robots.txt disallows (402 policy_20140, proxy.md §1.4).

Usage from asyncio code::

    responder = HttpResponder([("127.0.2.1", 80)], Path("http.jsonl"))
    await responder.start()
    ...
    await responder.stop()

or from synchronous code, ``running = start_in_thread(listen, log)`` and
``running.stop()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from aiohttp import web

from rootcanary.errors import ServerError

log = logging.getLogger("authserver.http")

ROBOTS_TXT = "User-agent: *\nAllow: /\n"
BODY = "rootcanary test name\n"
#: Bytes of a header value kept in the log (a hostile client cannot bloat it).
MAX_FIELD = 512


@dataclass(frozen=True, slots=True)
class Hit:
    """One request received; field names are the log's keys, in order."""

    time: str
    src: str | None
    sport: int | None
    dst: str | None
    dport: int | None
    host: str | None
    method: str
    path: str
    user_agent: str | None
    via: str | None
    x_forwarded_for: str | None
    status: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


def utc_now() -> str:
    """UTC with six microsecond digits and a Z, as in the query log."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clip(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_FIELD else value[:MAX_FIELD]


def _peer(request: web.BaseRequest, name: str) -> tuple[str | None, int | None]:
    transport = request.transport
    info = transport.get_extra_info(name) if transport is not None else None
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None, None


class HttpResponder:
    """An aiohttp server on one or more HOST:PORT; logs every hit."""

    def __init__(
        self, listen: Sequence[tuple[str, int]], log_path: Path | None = None
    ) -> None:
        if not listen:
            raise ServerError("the HTTP responder needs at least one HOST:PORT")
        self.listen = tuple(listen)
        self.log_path = log_path
        self.hits = 0
        self._runner: web.AppRunner | None = None
        self._log: IO[str] | None = None
        self.bound: list[tuple[str, int]] = []

    async def start(self) -> list[tuple[str, int]]:
        """Bind every address; return them (with the real port for port 0)."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered: every hit is on disk when the client has its answer.
            self._log = self.log_path.open("a", encoding="utf-8", buffering=1)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await self._runner.setup()
        try:
            for host, port in self.listen:
                site = web.TCPSite(self._runner, host, port, reuse_address=True)
                await site.start()
                server = site._server  # the asyncio Server, for the bound port
                sockets = getattr(server, "sockets", None) or ()
                for sock in sockets:
                    address = sock.getsockname()
                    self.bound.append((str(address[0]), int(address[1])))
        except OSError as exc:
            await self.stop()
            raise ServerError(
                f"HTTP responder cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        log.info(
            "HTTP responder on %s",
            ", ".join(f"{h}:{p}" for h, p in self.bound),
        )
        return list(self.bound)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/robots.txt":
            response = web.Response(text=ROBOTS_TXT)
        else:
            response = web.Response(text=BODY)
        # Every fetch must reach us: no cache between the exit and this server.
        response.headers["Cache-Control"] = "no-store"
        self._record(request, response.status)
        return response

    def _record(self, request: web.Request, status: int) -> None:
        src, sport = _peer(request, "peername")
        dst, dport = _peer(request, "sockname")
        headers = request.headers
        hit = Hit(
            time=utc_now(),
            src=src,
            sport=sport,
            dst=dst,
            dport=dport,
            host=_clip(headers.get("Host")),
            method=request.method,
            path=_clip(request.raw_path) or "/",
            user_agent=_clip(headers.get("User-Agent")),
            via=_clip(headers.get("Via")),
            x_forwarded_for=_clip(headers.get("X-Forwarded-For")),
            status=status,
        )
        self.hits += 1
        if self._log is not None:
            self._log.write(hit.to_json() + "\n")


class RunningResponder:
    """A responder on its own event loop thread, for synchronous callers."""

    def __init__(self, responder: HttpResponder) -> None:
        self.responder = responder
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="http-responder", daemon=True
        )

    @property
    def bound(self) -> list[tuple[str, int]]:
        return list(self.responder.bound)

    def start(self) -> RunningResponder:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.responder.start(), self._loop)
        try:
            future.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.responder.stop(), self._loop)
        try:
            future.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()

    def __enter__(self) -> RunningResponder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(
    listen: Sequence[tuple[str, int]], log_path: Path | None = None
) -> RunningResponder:
    """Start a responder on a background thread; call ``.stop()`` when done."""
    return RunningResponder(HttpResponder(listen, log_path)).start()
