"""Loopback address aliases.

BIND binds only addresses present on an interface (``listen-on`` silently binds
nothing otherwise), so each testbed address gets a /32 alias on ``lo``. The
other daemons bind any 127/8 address without one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess

log = logging.getLogger("rootcanary.testbed")


def _present() -> set[str]:
    out = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", "lo"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            found.add(parts[parts.index("inet") + 1].split("/")[0])
        if "inet6" in parts:
            found.add(parts[parts.index("inet6") + 1].split("/")[0])
    return found


def ensure(addresses: list[str]) -> list[str]:
    """Add a /32 alias on lo for each IPv4 address missing; return those added."""
    wanted = [
        a for a in dict.fromkeys(addresses) if ipaddress.ip_address(a).version == 4
    ]
    if not wanted or shutil.which("ip") is None or os.geteuid() != 0:
        if wanted and os.geteuid() != 0:
            log.warning("not root: cannot add loopback aliases; BIND may bind nothing")
        return []
    present = _present()
    added = []
    for address in wanted:
        if address in present or address == "127.0.0.1":
            continue
        result = subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", "lo"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            added.append(address)
        elif "File exists" not in result.stderr:
            log.warning("ip addr add %s/32 dev lo: %s", address, result.stderr.strip())
    return added


def remove(addresses: list[str]) -> None:
    if not addresses or shutil.which("ip") is None:
        return
    for address in addresses:
        subprocess.run(
            ["ip", "addr", "del", f"{address}/32", "dev", "lo"],
            capture_output=True,
            check=False,
        )
