"""The server process: sockets, the event loop, workers, signals, re-signing.

Plain non-blocking sockets on one ``epoll`` per process; UDP datagrams are
read in bursts and answered inline (no per-packet task or future). With
``workers > 1`` the first process forks the others, each with its own
SO_REUSEPORT sockets and caches; signatures are deterministic, so all serve
the same bytes. SIGTERM/SIGINT stop cleanly (flush, exit 0), SIGHUP reloads
the scenario file and reopens the query log.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from authserver import querylog as ql
from authserver.build import Built, ZoneBuilder, state_dir_for
from authserver.content import ds_rdatas
from authserver.engine import Endpoint, Engine
from rootcanary.errors import RootCanaryError, ServerError
from rootcanary.scenario import Scenario, load_scenario

log = logging.getLogger("authserver")

UDP_BURST = 256  # datagrams read per readiness event before polling again
TCP_MAX_CONNECTIONS = 512
TCP_MAX_PENDING = 1 << 20  # bytes of unsent answers before a client is dropped
HOUSEKEEPING = 0.5  # seconds between flush / idle / refresh checks
RETRY_REBUILD = 60.0


@dataclass(frozen=True)
class ServeOptions:
    """What ``rootcanary serve`` was asked to do; None means the scenario's value."""

    scenario: Path
    listen: tuple[tuple[str, int], ...] | None = None
    state_dir: Path | None = None
    query_log: Path | None = None
    workers: int | None = None


class Listener:
    """A bound socket: UDP or a listening TCP socket."""

    def __init__(
        self, sock: socket.socket, transport: str, host: str, port: int
    ) -> None:
        self.sock = sock
        self.transport = transport
        self.family = 6 if sock.family == socket.AF_INET6 else 4
        self.endpoint = Endpoint(transport, host, port)


def open_listeners(
    listen: tuple[tuple[str, int], ...], reuseport: bool
) -> list[Listener]:
    """Bind UDP and TCP on every address; a failure names address and reason."""
    out: list[Listener] = []
    try:
        for host, port in listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            udp = _bind(family, socket.SOCK_DGRAM, host, port, reuseport)
            out.append(Listener(udp, "udp", host, udp.getsockname()[1]))
            # Port 0 (tests): TCP on the port the kernel gave UDP.
            actual = udp.getsockname()[1]
            tcp = _bind(family, socket.SOCK_STREAM, host, actual, reuseport)
            out.append(Listener(tcp, "tcp", host, actual))
    except BaseException:
        for listener in out:
            listener.sock.close()
        raise
    return out


def _bind(
    family: int, kind: int, host: str, port: int, reuseport: bool
) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            # Room for bursts while the loop is busy (the kernel caps it at
            # net.core.rmem_max).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (another DNS server is using it: stop it or use --listen)"
        elif exc.errno == errno.EACCES:
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = " (no interface has this address)"
        raise ServerError(
            f"cannot listen on {where}/{proto}: {exc.strerror or exc}{hint}"
        ) from None
    return sock


class _Conn:
    __slots__ = (
        "endpoint",
        "family",
        "inbuf",
        "last",
        "outbuf",
        "sock",
        "sport",
        "src",
    )

    def __init__(
        self, sock: socket.socket, addr: tuple[str, int], listener: Listener
    ) -> None:
        self.sock = sock
        self.src = addr[0]
        self.sport = addr[1]
        self.endpoint = listener.endpoint
        self.family = listener.family
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.last = time.monotonic()


class Worker:
    """One process's event loop over its listeners."""

    def __init__(
        self,
        engine: Engine,
        listeners: list[Listener],
        built: Built,
        builder: ZoneBuilder,
        options: ServeOptions,
        tcp_idle: float,
        name: str,
    ) -> None:
        self.engine = engine
        self.listeners = listeners
        self.built = built
        self.builder = builder
        self.options = options
        self.tcp_idle = tcp_idle
        self.name = name
        self.stop = False
        self.hup = False
        self.children: dict[int, int] = {}  # pid -> worker number (first process)
        #: Forks worker ``number`` and returns its pid (first process only).
        self.spawn: Callable[[int], int] | None = None
        self._conns: dict[int, _Conn] = {}
        self._pending: Built | None = None
        self._rebuilding = False
        self._retry_at = 0.0
        self.tcp_refused = 0
        self.send_errors = 0
        self.crashes = 0

    # -- signals ------------------------------------------------------------

    def install_signals(self) -> socket.socket:
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self._wake_w = wsock  # kept alive: the wakeup fd must stay open
        signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)

        def on_stop(signum: int, frame: object) -> None:
            self.stop = True

        def on_hup(signum: int, frame: object) -> None:
            self.hup = True

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        return rsock

    # -- the loop -----------------------------------------------------------

    def run(self, early: list[int] | None = None) -> None:
        """Serve until stopped; ``early`` collects stop signals that arrived
        before this worker's own handlers were installed."""
        wake = self.install_signals()
        if early:
            self.stop = True
        poller = select.epoll()
        by_fd = {}
        for listener in self.listeners:
            poller.register(listener.sock.fileno(), select.EPOLLIN)
            by_fd[listener.sock.fileno()] = listener
        poller.register(wake.fileno(), select.EPOLLIN)
        wake_fd = wake.fileno()
        next_house = time.monotonic() + HOUSEKEEPING
        querylog = self.engine.querylog
        while not self.stop:
            timeout = max(0.0, next_house - time.monotonic())
            try:
                events = poller.poll(timeout)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                events = []
            for fd, mask in events:
                ready = by_fd.get(fd)
                if ready is not None:
                    if ready.transport == "udp":
                        self._udp(ready)
                    else:
                        self._accept(ready, poller)
                elif fd == wake_fd:
                    _drain(wake)
                else:
                    self._tcp_event(fd, mask, poller)
            now = time.monotonic()
            if querylog is not None and querylog.due(now):
                querylog.flush()
            if now >= next_house:
                next_house = now + HOUSEKEEPING
                self._housekeeping(now, poller)
        self._shutdown(poller)

    def _udp(self, listener: Listener) -> None:
        sock = listener.sock
        recv = sock.recvfrom
        send = sock.sendto
        handle = self.engine.handle
        endpoint = listener.endpoint
        family = listener.family
        for _ in range(UDP_BURST):
            try:
                data, addr = recv(65535)
            except BlockingIOError:
                return
            except OSError:
                continue  # e.g. ICMP errors reported on the socket
            try:
                out = handle(data, addr[0], addr[1], family, endpoint)
            except Exception:  # a bug must cost one answer, not the server
                out = self._crashed(data)
            if out is not None:
                try:
                    send(out, addr)
                except OSError:
                    self.send_errors += 1

    def _accept(self, listener: Listener, poller: select.epoll) -> None:
        for _ in range(64):
            try:
                sock, addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self._conns) >= TCP_MAX_CONNECTIONS:
                # RFC 7766 §6.2.2 lets a busy server close connections.
                self.tcp_refused += 1
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, addr, listener)
            self._conns[sock.fileno()] = conn
            poller.register(sock.fileno(), select.EPOLLIN)

    def _tcp_event(self, fd: int, mask: int, poller: select.epoll) -> None:
        conn = self._conns.get(fd)
        if conn is None:
            return
        if mask & (select.EPOLLERR | select.EPOLLHUP) and not mask & select.EPOLLIN:
            self._close(fd, poller)
            return
        if mask & select.EPOLLIN:
            try:
                chunk = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                chunk = None
            except OSError:
                self._close(fd, poller)
                return
            if chunk == b"":
                self._close(fd, poller)
                return
            if chunk:
                conn.last = time.monotonic()
                conn.inbuf += chunk
                if not self._frames(conn):
                    # Answers to the frames before the bad one still go out.
                    with contextlib.suppress(OSError):
                        conn.sock.send(conn.outbuf[:TCP_MAX_PENDING])
                    self._close(fd, poller)
                    return
        self._flush_conn(fd, conn, poller)

    def _frames(self, conn: _Conn) -> bool:
        """Answer every complete length-prefixed message (RFC 1035 §4.2.2)."""
        buf = conn.inbuf
        while len(buf) >= 2:
            length = buf[0] << 8 | buf[1]
            if length == 0:
                return False
            if len(buf) < 2 + length:
                break
            data = bytes(buf[2 : 2 + length])
            del buf[: 2 + length]
            try:
                out = self.engine.handle(
                    data, conn.src, conn.sport, conn.family, conn.endpoint, True
                )
            except Exception:  # a bug must cost one answer, not the server
                out = self._crashed(data)
            if out is not None:
                conn.outbuf += len(out).to_bytes(2, "big") + out
        return len(conn.outbuf) <= TCP_MAX_PENDING

    def _flush_conn(self, fd: int, conn: _Conn, poller: select.epoll) -> None:
        if conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
                del conn.outbuf[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(fd, poller)
                return
        want = select.EPOLLIN | (select.EPOLLOUT if conn.outbuf else 0)
        poller.modify(fd, want)

    def _close(self, fd: int, poller: select.epoll) -> None:
        conn = self._conns.pop(fd, None)
        if conn is None:
            return
        with contextlib.suppress(OSError):
            poller.unregister(fd)
        conn.sock.close()

    def _crashed(self, data: bytes) -> bytes | None:
        """SERVFAIL for a query the engine failed on; logged with its traceback."""
        self.crashes += 1
        if self.crashes <= 10 or self.crashes % 1000 == 0:
            log.exception(
                "%s: internal error on a query (%d so far)", self.name, self.crashes
            )
        if len(data) < 12:
            return None
        flags = int.from_bytes(data[2:4], "big")
        # QR, the query's opcode and RD; rcode SERVFAIL (RFC 1035 §4.1.1).
        out = 0x8000 | (flags & 0x7900) | 2
        return data[:2] + out.to_bytes(2, "big") + bytes(8)

    # -- housekeeping -------------------------------------------------------

    def _housekeeping(self, now: float, poller: select.epoll) -> None:
        for fd, conn in list(self._conns.items()):
            if now - conn.last > self.tcp_idle:
                self._close(fd, poller)  # RFC 7766 §6.2.3 idle timeout
        if self._pending is not None:
            self.built, self._pending = self._pending, None
            self.engine.swap(self.built.served)
            log.info(
                "%s: now serving signatures of epoch %s",
                self.name,
                _utc(self.built.epoch),
            )
        if self.hup:
            self.hup = False
            self._reload()
        wall = time.time()
        if (
            not self._rebuilding
            and wall >= self.built.refresh_at
            and time.monotonic() >= self._retry_at
        ):
            epoch = self.builder.epoch_for(self.built.refresh_at)
            self._start_rebuild(self.builder, epoch, "re-signing")
        if self.children:
            self._check_children()

    def _start_rebuild(self, builder: ZoneBuilder, epoch: int | None, why: str) -> None:
        self._rebuilding = True

        def work() -> None:
            try:
                built = builder.build(epoch)
            except RootCanaryError as exc:
                log.error(
                    "%s: %s failed, keeping the old zones: %s", self.name, why, exc
                )
                self._retry_at = time.monotonic() + RETRY_REBUILD
            except Exception:
                log.exception("%s: %s failed, keeping the old zones", self.name, why)
                self._retry_at = time.monotonic() + RETRY_REBUILD
            else:
                self.builder = builder
                self._pending = built
            finally:
                self._rebuilding = False

        # Signing runs beside the loop: answers continue between signatures.
        threading.Thread(target=work, name=f"{self.name}-sign", daemon=True).start()

    def _reload(self) -> None:
        for pid in self.children:
            _signal(pid, signal.SIGHUP)
        if self.engine.querylog is not None:
            self.engine.querylog.reopen()
        try:
            scenario = load_scenario(self.options.scenario)
            listen = self.options.listen or scenario.server.listen
            builder = ZoneBuilder(scenario, self.builder.state_dir, listen)
        except RootCanaryError as exc:
            log.error("%s: reload failed, keeping the old zones: %s", self.name, exc)
            return
        log.info("%s: reloading %s", self.name, self.options.scenario)
        self._start_rebuild(builder, None, "reload")

    def _check_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            number = self.children.pop(pid, None)
            if number is None or self.stop:
                continue
            log.error(
                "worker %d (pid %d) died (status %d); starting it again",
                number,
                pid,
                status,
            )
            assert self.spawn is not None
            self.children[self.spawn(number)] = number

    def _shutdown(self, poller: select.epoll) -> None:
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while self.children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.02)
                continue
            self.children.pop(pid, None)
        for pid in self.children:
            _signal(pid, signal.SIGKILL)
        for fd in list(self._conns):
            self._close(fd, poller)
        for listener in self.listeners:
            listener.sock.close()
        if self.engine.querylog is not None:
            self.engine.querylog.close()
        log.info("%s: stopped; %s", self.name, summary(self.engine, self))


def summary(engine: Engine, worker: Worker | None = None) -> str:
    """Counts for the closing log line: what was answered, dropped, refused."""
    drops = sum(engine.drops.values())
    parts = [f"{engine.queries} queries", f"dropped {drops}" + _detail(engine.drops)]
    parts.append(f"FORMERR {sum(engine.formerr.values())}" + _detail(engine.formerr))
    parts.append(
        f"cache: {engine.rendered} rendered, "
        f"{engine.shared} shared, {engine.counters['slow']} slow path"
    )
    if worker is not None and (
        worker.tcp_refused or worker.send_errors or worker.crashes
    ):
        parts.append(
            f"tcp refused {worker.tcp_refused}, send errors {worker.send_errors}, "
            f"internal errors {worker.crashes}"
        )
    if engine.querylog is not None and engine.querylog.lost:
        parts.append(f"query-log lines lost {engine.querylog.lost}")
    return "; ".join(parts)


def _detail(counter: Counter[str]) -> str:
    if not counter:
        return ""
    return " (" + ", ".join(f"{k}: {v}" for k, v in counter.most_common()) + ")"


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def announce(
    scenario: Scenario,
    built: Built,
    listeners: list[Listener],
    options: ServeOptions,
    workers: int,
) -> None:
    """Say on stderr what is served, where, and the DS records to publish."""
    kinds = Counter(c.planned.kind for c in built.contents)
    top = [c.spec.apex for c in built.contents if c.planned.kind == "zone"]
    extra = []
    if kinds["bogus-ds"]:
        extra.append(f"{kinds['bogus-ds']} bogus-ds child")
    if kinds["matrix"]:
        extra.append(f"{kinds['matrix']} algorithm-matrix zones")
    log.info(
        "serving %d zones: %s%s",
        len(built.contents),
        " ".join(top),
        f" (+ {', '.join(extra)})" if extra else "",
    )
    where = sorted({f"{lst.endpoint.host}:{lst.endpoint.port}" for lst in listeners})
    log.info(
        "listening on %s (udp and tcp), %d worker%s",
        ", ".join(where),
        workers,
        "s" if workers > 1 else "",
    )
    log.info("keys in %s", options.state_dir)
    for content in built.contents:
        if content.planned.parent is not None:
            continue
        for ds in ds_rdatas(content.origin, content.keys, content.spec.ds_digests):
            role = (
                "trust anchor"
                if content.origin.to_text() == "."
                else "publish in the parent"
            )
            log.info(
                "DS (%s): %s IN DS %s", role, content.spec.apex, ds.to_text().upper()
            )
    log.info(
        "signatures valid %s to %s, re-signed from %s",
        _utc(built.epoch),
        _utc(built.epoch + int(max(c.spec.signature_validity for c in built.contents))),
        _utc(built.refresh_at),
    )
    if options.query_log:
        log.info("query log: %s", options.query_log)


def serve(options: ServeOptions) -> None:
    """Run the server in the foreground until SIGTERM or SIGINT."""
    scenario = load_scenario(options.scenario)
    listen = options.listen or scenario.server.listen
    workers = options.workers or scenario.server.workers
    state_dir = state_dir_for(scenario, options.state_dir)
    query_log_path = options.query_log or scenario.server.query_log
    options = replace(options, state_dir=state_dir, query_log=query_log_path)
    if not scenario.zones:
        raise ServerError(f"{options.scenario}: the scenario has no [[zone]] to serve")
    # A stop request while keys load and zones are signed still ends in a
    # clean exit 0 (the caller may give up waiting and send SIGTERM).
    early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda sig, frame: early.append(sig))
    # A reload request during start-up is moot: the scenario is being read.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Bind first: a port in use must fail at once, before seconds of signing.
    listeners = open_listeners(listen, reuseport=workers > 1)
    try:
        builder = ZoneBuilder(scenario, state_dir, listen)
        built = builder.build()
    except BaseException:
        for listener in listeners:
            listener.sock.close()
        raise
    if early:
        for listener in listeners:
            listener.sock.close()
        log.info("stopped before serving (signal %d)", early[0])
        return
    announce(scenario, built, listeners, options, workers)
    bound = tuple(
        (lst.endpoint.host, lst.endpoint.port)
        for lst in listeners
        if lst.transport == "udp"
    )

    def make_worker(number: int, socks: list[Listener]) -> Worker:
        querylog = ql.QueryLog(query_log_path) if query_log_path else None
        engine = Engine(built.served, scenario.server.max_udp_size, querylog)
        return Worker(
            engine,
            socks,
            built,
            builder,
            options,
            scenario.server.tcp_idle_timeout,
            f"worker {number}",
        )

    def spawn(number: int) -> int:
        pid = os.fork()
        if pid:
            return pid
        # Child: its own sockets (SO_REUSEPORT spreads flows across them).
        code = 0
        try:
            for listener in listeners:
                listener.sock.close()
            signal.set_wakeup_fd(-1)
            make_worker(number, open_listeners(bound, reuseport=True)).run(early)
        except BaseException:
            log.exception("worker %d failed", number)
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    main = make_worker(0, listeners)
    main.spawn = spawn
    for number in range(1, workers):
        main.children[spawn(number)] = number
    log.info("ready")
    main.run(early)
