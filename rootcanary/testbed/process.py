"""Starting, watching and stopping daemons by pid.

Every daemon runs in the foreground in its own session (so a Ctrl-C at the
terminal reaches only us, and we decide how it ends), with stdout and stderr in
a log file. A pid is only signalled after ``/proc/<pid>/cmdline`` confirms it
is still the program we started: pids are reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from rootcanary.errors import TestbedError


@dataclass(frozen=True)
class ProcessRecord:
    """What the state file keeps of a started daemon."""

    name: str
    kind: str  # "server" or the resolver implementation
    pid: int
    argv: tuple[str, ...]
    log: str
    address: str
    port: int

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pid": self.pid,
            "argv": list(self.argv),
            "log": self.log,
            "address": self.address,
            "port": self.port,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ProcessRecord:
        argv = data["argv"]
        assert isinstance(argv, list)
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            pid=int(str(data["pid"])),
            argv=tuple(str(a) for a in argv),
            log=str(data["log"]),
            address=str(data["address"]),
            port=int(str(data["port"])),
        )


def spawn(argv: Sequence[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def is_running(pid: int, argv0: str) -> bool:
    """True if ``pid`` is alive, not a zombie, and still runs ``argv0``."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and ')'.
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    if state in ("Z", "X"):
        return False
    first = raw.split(b"\0", 1)[0].decode(errors="replace")
    return first == argv0


def terminate(
    pid: int,
    argv0: str,
    timeout: float = 5.0,
    reap: Callable[[], object] | None = None,
) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; True if it had to be killed."""
    if not is_running(pid, argv0):
        if reap:
            reap()
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap:
            reap()
        if not is_running(pid, argv0):
            return False
        time.sleep(0.02)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap:
            reap()
        if not is_running(pid, argv0):
            return True
        time.sleep(0.02)
    raise TestbedError(f"pid {pid} ({argv0}) survived SIGKILL for {timeout:g} s")


def _signal(pid: int, sig: signal.Signals) -> None:
    # Each daemon leads its own session: signal the group, so helpers it forked
    # go too, and fall back to the pid alone if the group is gone.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (log is empty)"


def answers(address: str, port: int, qname: str = ".", timeout: float = 0.5) -> bool:
    """True once something answers a DNS query on address:port."""
    query = dns.message.make_query(qname, dns.rdatatype.SOA)
    try:
        dns.query.udp(query, address, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return True


def wait_until_answers(
    process: subprocess.Popen[bytes],
    name: str,
    address: str,
    port: int,
    log: Path,
    timeout: float,
    qname: str = ".",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise TestbedError(
                f"{name} exited with status {code} right after starting; "
                f"its log ({log}) ends with:\n{log_tail(log)}"
            )
        if answers(address, port, qname):
            return
        time.sleep(0.05)
    raise TestbedError(
        f"{name} did not answer on {address} port {port} within {timeout:g} s; "
        f"its log ({log}) ends with:\n{log_tail(log)}"
    )
