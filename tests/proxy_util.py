"""Helpers for the proxy tests: an event loop on a thread, scenario text."""

from __future__ import annotations

import asyncio
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console as RichConsole

from rootcanary.backends.proxy_standin import Exit, Gateway
from rootcanary.console import console
from rootcanary.errors import MissingBinaryError
from rootcanary.secrets import Secret

T = TypeVar("T")

PASSWORD = "Zq7-s3cr3t-Pa55"  # has a '-' and would stand out in any file
PASSWORD_ENV = "RC_TEST_PROXY_PASSWORD"


class LoopThread:
    """An asyncio loop on a daemon thread; servers under test live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@contextmanager
def stderr_capture() -> Iterator[io.StringIO]:
    """What the console writes to stderr (messages, progress) during the block."""
    buffer = io.StringIO()
    saved = console.err
    console.err = RichConsole(file=buffer, highlight=False, width=200)
    try:
        yield buffer
    finally:
        console.err = saved


@contextmanager
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    try:
        yield loop
    finally:
        loop.close()


@contextmanager
def gateway(
    loop: LoopThread,
    exits: list[Exit],
    host: str,
    *,
    password: str = PASSWORD,
    **options: Any,
) -> Iterator[Gateway]:
    gw = Gateway(exits, Secret(password), **options)
    try:
        loop.run(gw.start(host, 0))
        yield gw
    finally:
        loop.run(gw.stop())


@contextmanager
def blackhole(host: str) -> Iterator[int]:
    """A TCP port that completes handshakes and never answers (a dead exit)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(64)
        yield sock.getsockname()[1]
    finally:
        sock.close()


def free_port(host: str) -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


SCENARIO = """
name = "{name}"

[[zone]]
apex = "canary.test."
test_names = true
answer_v4 = "{answer}"

[tests]
bogus = ["sig"]
keytags = [20326]
whoami = false
dnskey = false

[proxy]
gateway = "http://{gateway}"
params = {{ customer = "c_rootcanary", zone = "residential" }}
password_env = "{env}"
sessions = {sessions}
concurrency = {concurrency}
rate = 0
timeout = "{timeout}"
retry_delay = "0s"
port = {port}
{extra}
"""


def write_scenario(
    directory: Path,
    *,
    gateway: str,
    port: int = 80,
    answer: str = "127.0.40.1",
    sessions: int = 4,
    concurrency: int = 2,
    timeout: str = "5s",
    extra: str = "",
    name: str = "px",
) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(
        SCENARIO.format(
            name=name,
            answer=answer,
            gateway=gateway,
            env=PASSWORD_ENV,
            sessions=sessions,
            concurrency=concurrency,
            timeout=timeout,
            port=port,
            extra=extra,
        )
    )
    return path


# -- squid 5.7 as exit nodes (proxy.md §6) --------------------------------------

SQUID_CONF = """\
http_port {address}:{port}
dns_nameservers {nameserver}
dns_timeout {dns_timeout} seconds
dns_retransmit_interval 1 seconds
negative_dns_ttl 1 seconds
positive_dns_ttl 10 seconds
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
cache deny all
cache_mem 8 MB
hosts_file none
pinger_enable off
tcp_outgoing_address {address}
udp_outgoing_address {address}
shutdown_lifetime 0 seconds
cache_effective_user nobody
pid_filename {directory}/squid.pid
access_log stdio:{directory}/access.log
cache_log {directory}/cache.log
coredump_dir {directory}
"""


@dataclass(frozen=True)
class Squid:
    name: str
    address: str
    port: int
    nameserver: str
    pid: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


@contextmanager
def squids(
    specs: list[tuple[str, str, str]], dns_timeout: int = 2, port: int = 3128
) -> Iterator[dict[str, Squid]]:
    """Start one squid per (name, address, nameserver); stop each by its pid.

    squid drops to ``nobody``, which cannot enter pytest's tmp dirs (mode
    0700), so each instance gets a directory of its own under /tmp, removed
    afterwards. ``-n`` gives each its own shared-memory segment names.
    """
    if shutil.which("squid") is None:
        raise MissingBinaryError("squid", "squid")
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    running: dict[str, Squid] = {}
    try:
        for name, address, nameserver in specs:
            directory = Path(tempfile.mkdtemp(prefix=f"rc-squid-{name}-"))
            directory.chmod(0o755)
            os.chown(directory, pwd.getpwnam("nobody").pw_uid, -1)
            conf = directory / "squid.conf"
            conf.write_text(
                SQUID_CONF.format(
                    address=address,
                    port=port,
                    nameserver=nameserver,
                    dns_timeout=dns_timeout,
                    directory=directory,
                )
            )
            service = "rc" + address.replace(".", "")
            process = subprocess.Popen(
                ["squid", "-n", service, "-N", "-f", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=(directory / "stderr.txt").open("wb"),
            )
            started.append((process, directory))
            running[name] = Squid(
                name, address, port, nameserver, process.pid, directory
            )
        for (process, directory), squid in zip(started, running.values(), strict=True):
            _wait_listening(process, squid, directory)
        yield running
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
        for process, directory in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
            shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(
    process: subprocess.Popen[bytes], squid: Squid, directory: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (directory / "cache.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"squid {squid.name} exited: {log}")
        try:
            with socket.create_connection((squid.address, squid.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"squid {squid.name} did not listen within 30 s")


@contextmanager
def silent_resolver(address: str) -> Iterator[None]:
    """A UDP port 53 that takes queries and never answers: a resolver that
    times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((address, 53))
        yield
    finally:
        sock.close()
