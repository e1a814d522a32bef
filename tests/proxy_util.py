"""Helpers for the proxy tests: an event loop on a thread, scenario text."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console as RichConsole

from rootcanary.backends.proxy_standin import Exit, Gateway
from rootcanary.console import console
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
