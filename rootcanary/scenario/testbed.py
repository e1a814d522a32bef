"""The ``[testbed]`` section: real resolvers on loopback, one per address.

Example::

    [testbed]
    server = "127.0.2.1"          # where the authserver listens (the root's glue)
    run_dir = "runs/testbed"      # default: runs/<scenario name>
    holddown = "60s"              # RFC 5011 add/remove hold-down (default: 30 days)
    refresh = "20s"               # how often managed anchors are re-checked

    [[testbed.resolver]]
    name = "unbound"
    implementation = "unbound"    # unbound | bind | kresd | pdns-recursor
    variant = "validating"        # validating | off | stale | static | stateless
    address = "127.0.1.1"

Variants: ``validating`` holds the private root's KSK as an RFC 5011-managed
trust anchor (PowerDNS Recursor has no RFC 5011 and gets a static one);
``off`` does not validate; ``stale`` holds a KSK the root does not use;
``static`` holds the right KSK read-only (no RFC 5011 updates); ``stateless``
is ``validating`` with its state directory wiped at every start, as in a
container.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from rootcanary.config import Table

IMPLEMENTATIONS = ("unbound", "bind", "kresd", "pdns-recursor")
VARIANTS = ("validating", "off", "stale", "static", "stateless")


@dataclass(frozen=True)
class ResolverSpec:
    name: str
    implementation: str
    variant: str
    address: str
    port: int = 53


@dataclass(frozen=True)
class TestbedSpec:
    __test__ = False  # not a pytest class

    resolvers: tuple[ResolverSpec, ...]
    server: str = "127.0.2.1"
    server_port: int = 53
    run_dir: Path | None = None
    #: RFC 5011 hold-down (add and remove); None keeps each daemon's default.
    holddown: float | None = None
    #: How often managed trust anchors are re-fetched; None keeps defaults.
    refresh: float | None = None
    #: Seconds to wait for each daemon to answer after it starts.
    start_timeout: float = 15.0


def parse_testbed(table: Table | None) -> TestbedSpec | None:
    if table is None:
        return None
    resolvers: list[ResolverSpec] = []
    names: set[str] = set()
    endpoints: set[tuple[str, int]] = set()
    for entry in table.tables("resolver"):
        spec = ResolverSpec(
            name=entry.text("name"),
            implementation=entry.text("implementation", choices=IMPLEMENTATIONS),
            variant=entry.text("variant", "validating", choices=VARIANTS),
            address=_loopback(entry, "address"),
            port=entry.integer("port", 53, minimum=1, maximum=65535),
        )
        if not spec.name.replace("-", "").replace("_", "").isalnum():
            entry.fail(
                "name", f"use letters, digits, '-' and '_' only, not {spec.name!r}"
            )
        if spec.name in names:
            entry.fail("name", f"resolver name {spec.name!r} is used twice")
        if (spec.address, spec.port) in endpoints:
            entry.fail("address", f"{spec.address} port {spec.port} is used twice")
        names.add(spec.name)
        endpoints.add((spec.address, spec.port))
        entry.done()
        resolvers.append(spec)
    if not resolvers:
        table.fail("resolver", "needs at least one [[testbed.resolver]]")
    testbed = TestbedSpec(
        resolvers=tuple(resolvers),
        server=_loopback(table, "server", "127.0.2.1"),
        server_port=table.integer("server_port", 53, minimum=1, maximum=65535),
        run_dir=table.path("run_dir", None),
        holddown=table.duration("holddown", None, minimum=1),
        refresh=table.duration("refresh", None, minimum=1),
        start_timeout=table.duration("start_timeout", 15.0, minimum=1),
    )
    if testbed.server in {r.address for r in resolvers}:
        table.fail("server", f"{testbed.server} is also a resolver's address")
    table.done()
    return testbed


def _loopback(table: Table, key: str, default: str | None = None) -> str:
    text = table.text(key) if default is None else table.text(key, default)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        table.fail(key, f"not an IP address: {text!r}")
    if not address.is_loopback:
        # The testbed's traffic must stay on this machine.
        table.fail(
            key, f"testbed addresses must be loopback (127.0.0.0/8 or ::1), not {text}"
        )
    return str(text)
