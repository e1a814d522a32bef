"""Shared helpers of the authserver tests: addresses, server processes, DNSSEC checks.

The DNSSEC checks here use dnspython only, never the server's own code, so a
wrong proof or signature cannot be confirmed by the code that made it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

REPO = Path(__file__).resolve().parent.parent
CANARY = REPO / "scenarios" / "canary.toml"
NET = os.environ.get("ROOTCANARY_AUTH_TEST_NET", "127.0.20")


@dataclass(frozen=True)
class Addresses:
    """Loopback addresses of the authserver tests (127.0.20.0/24 by default)."""

    net: str

    def __call__(self, host: int) -> str:
        return f"{self.net}.{host}"

    @property
    def server(self) -> str:
        return self(1)

    @property
    def unbound(self) -> str:
        return self(2)

    @property
    def bind(self) -> str:
        return self(3)

    @property
    def kresd(self) -> str:
        return self(4)

    @property
    def pdns(self) -> str:
        return self(5)

    @property
    def nsd(self) -> str:
        return self(6)


Ask = Callable[[str, str], dns.message.Message]


def query(
    address: str,
    name: str,
    rdtype: str = "A",
    *,
    port: int = 53,
    do: bool = True,
    tcp: bool = False,
    payload: int = 4096,
    timeout: float = 3.0,
) -> dns.message.Message:
    msg = dns.message.make_query(name, rdtype, want_dnssec=do, payload=payload)
    msg.flags &= ~dns.flags.RD
    if tcp:
        return dns.query.tcp(msg, address, timeout=timeout, port=port)
    return dns.query.udp(msg, address, timeout=timeout, port=port)


class Server:
    """A ``rootcanary serve`` subprocess, stopped on exit (also on failure)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], stderr: Path, address: str, port: int
    ) -> None:
        self.proc = proc
        self.stderr_path = stderr
        self.address = address
        self.port = port

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def serve_command(scenario: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "rootcanary", "serve", str(scenario), *args]


@contextlib.contextmanager
def running_server(
    tmp: Path,
    scenario: Path,
    address: str,
    *args: str,
    port: int = 53,
    ready_zone: str = "canary.test.",
) -> Iterator[Server]:
    """Start the server on ``address:port`` and wait until it answers SOA."""
    stderr = tmp / f"serve-{address}-{port}.err"
    listen = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            serve_command(scenario, "--listen", listen, *args),
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=REPO,
        )
    server = Server(proc, stderr, address, port)
    try:
        wait_answers(server, ready_zone)
        yield server
    finally:
        server.stop()


def wait_answers(server: Server, zone: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(
                f"server exited with {server.proc.returncode}: {server.stderr}"
            )
        with contextlib.suppress(dns.exception.Timeout, OSError):
            reply = query(server.address, zone, "SOA", port=server.port, timeout=0.3)
            if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                return
        time.sleep(0.05)
    raise AssertionError(
        f"server did not answer {zone} SOA in {seconds}s: {server.stderr}"
    )


@contextlib.contextmanager
def daemon(
    cmd: list[str], log: Path, **kwargs: object
) -> Iterator[subprocess.Popen[bytes]]:
    """A foreground daemon (resolver, NSD), always stopped afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- DNSSEC checks ------------------------------------------------------------


def section_rrsets(
    section: list[dns.rrset.RRset], rdtype: int, covers: int = 0
) -> list[dns.rrset.RRset]:
    return [r for r in section if r.rdtype == rdtype and r.covers == covers]


def sigs_for(
    section: list[dns.rrset.RRset], rrset: dns.rrset.RRset
) -> dns.rrset.RRset | None:
    for r in section:
        if (
            r.rdtype == dns.rdatatype.RRSIG
            and r.covers == rrset.rdtype
            and r.name == rrset.name
        ):
            return r
    return None


class Chain:
    """Validates RRsets up to a trust anchor, fetching DNSKEY and DS with ``ask``."""

    def __init__(self, ask: Ask, anchor_ds: list[str]) -> None:
        self.ask = ask
        self.anchor = [
            dns.rrset.from_text(".", 0, "IN", "DS", line.split(" DS ", 1)[1])[0]
            for line in anchor_ds
        ]
        self._keys: dict[dns.name.Name, dns.rrset.RRset] = {}

    def ds(self, zone: dns.name.Name) -> list[dns.rdata.Rdata]:
        if zone == dns.name.root:
            return list(self.anchor)
        reply = self.ask(zone.to_text(), "DS")
        ds = section_rrsets(reply.answer, dns.rdatatype.DS)
        if not ds:
            return []
        sigs = sigs_for(reply.answer, ds[0])
        assert sigs is not None, f"DS of {zone} is unsigned"
        self.validate(ds[0], sigs)
        return list(ds[0])

    def keys(self, zone: dns.name.Name) -> dns.rrset.RRset:
        """The zone's DNSKEY set, validated by a key that one of its DS matches."""
        if zone in self._keys:
            return self._keys[zone]
        reply = self.ask(zone.to_text(), "DNSKEY")
        dnskeys = section_rrsets(reply.answer, dns.rdatatype.DNSKEY)[0]
        sigs = sigs_for(reply.answer, dnskeys)
        assert sigs is not None
        trusted = []
        for ds in self.ds(zone):
            for key in dnskeys:
                made = dns.dnssec.make_ds(
                    zone, key, ds.digest_type, policy=dns.dnssec.allow_all_policy
                )
                if made == ds:
                    trusted.append(key)
        if not trusted:
            raise dns.dnssec.ValidationFailure(f"no DNSKEY of {zone} matches its DS")
        anchor_set = dns.rrset.from_rdata_list(zone, dnskeys.ttl, trusted)
        dns.dnssec.validate(
            dnskeys, sigs, {zone: anchor_set}, policy=dns.dnssec.allow_all_policy
        )
        self._keys[zone] = dnskeys
        return dnskeys

    def validate(
        self, rrset: dns.rrset.RRset, sigs: dns.rrset.RRset, now: float | None = None
    ) -> None:
        signer = sigs[0].signer
        dns.dnssec.validate(
            rrset,
            sigs,
            {signer: self.keys(signer)},
            now=now,
            policy=dns.dnssec.allow_all_policy,
        )

    def validate_section(self, section: list[dns.rrset.RRset]) -> int:
        """Validate every non-RRSIG RRset of a section; return how many."""
        count = 0
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.RRSIG:
                continue
            sigs = sigs_for(section, rrset)
            assert sigs is not None, (
                f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} is unsigned"
            )
            self.validate(rrset, sigs)
            count += 1
        return count


def nsec_covers(nsec: dns.rrset.RRset, name: dns.name.Name) -> bool:
    """RFC 4035 §5.4: owner < name < next (the last NSEC wraps to the apex)."""
    owner, nxt = nsec.name, nsec[0].next
    if owner < nxt:
        return owner < name < nxt
    return name > owner or name < nxt


def nsec_matches(nsec: dns.rrset.RRset, name: dns.name.Name) -> bool:
    return nsec.name == name


def nsec_types(rrset: dns.rrset.RRset) -> set[int]:
    types: set[int] = set()
    for window, bitmap in rrset[0].windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
    return types


def nsec3_hash(name: dns.name.Name, nsec3: dns.rrset.RRset) -> str:
    rd = nsec3[0]
    return dns.dnssec.nsec3_hash(name, rd.salt, rd.iterations, rd.algorithm).lower()


def nsec3_covers(nsec3: dns.rrset.RRset, name: dns.name.Name) -> bool:
    """RFC 5155 §8.3: the hash of ``name`` lies strictly inside the interval."""
    import base64

    owner = nsec3.name.labels[0].decode().lower()
    nxt = base64.b32hexencode(nsec3[0].next).decode().lower()
    h = nsec3_hash(name, nsec3)
    if owner < nxt:
        return owner < h < nxt
    return h > owner or h < nxt


def nsec3_matches(nsec3: dns.rrset.RRset, name: dns.name.Name) -> bool:
    return nsec3.name.labels[0].decode().lower() == nsec3_hash(name, nsec3)


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


# -- one signed hierarchy per test session ---------------------------------------

_SHARED: dict[str, object] = {}


def shared_state(factory: object) -> Path:
    """A key directory for the canary scenario, created once per session."""
    if "state" not in _SHARED:
        _SHARED["state"] = Path(factory.mktemp("auth-state"))  # type: ignore[attr-defined]
    state = _SHARED["state"]
    assert isinstance(state, Path)
    return state
