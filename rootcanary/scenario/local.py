"""The ``[local]`` section: the local backend queries named resolvers directly.

Example::

    [local]
    resolvers = ["127.0.1.1", "[::1]:5353"]
    interval = "10s"      # omit for a single round
    duration = "5m"
    timeout = "2s"
    retries = 2
    bufsize = 1232
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary.config import Table


@dataclass(frozen=True)
class LocalSpec:
    resolvers: tuple[tuple[str, int], ...] = ()
    interval: float | None = None
    duration: float | None = None
    timeout: float = 2.0
    retries: int = 2
    bufsize: int = 1232
    tcp_fallback: bool = True


def parse_local(table: Table | None) -> LocalSpec | None:
    if table is None:
        return None
    spec = LocalSpec(
        resolvers=table.hostports("resolvers", ()),
        interval=table.duration("interval", None, minimum=0.01),
        duration=table.duration("duration", None),
        timeout=table.duration("timeout", 2.0, minimum=0.01),
        retries=table.integer("retries", 2, minimum=0, maximum=10),
        bufsize=table.integer("bufsize", 1232, minimum=512, maximum=65535),
        tcp_fallback=table.flag("tcp_fallback", True),
    )
    table.done()
    return spec
