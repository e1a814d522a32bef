"""Signed zones as master files (RFC 1035 §5) for NSD, Knot DNS and BIND.

The files hold exactly what the server serves, except the whoami names:
their answers depend on who asks, which no static server can do, so they are
left out and the NSEC/NSEC3 chains are built without them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset

from authserver.build import ZoneBuilder, state_dir_for
from authserver.zone import Node, Zone, name_key
from rootcanary import __version__
from rootcanary.errors import ServerError
from rootcanary.scenario import Scenario


def zone_file_name(apex: str) -> str:
    """``root.zone`` for ".", else ``canary.test.zone``."""
    return "root.zone" if apex == "." else f"{apex.rstrip('.')}.zone"


def zone_text(zone: Zone, epoch: int) -> str:
    """One zone as a master file: SOA first, then names in canonical order."""
    lines = [
        f"; {zone.text} signed by rootcanary {__version__}, epoch "
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))}",
        "; the bogus-* names fail validation on purpose",
    ]

    def emit(rrset: dns.rrset.RRset | None) -> None:
        if rrset is not None:
            lines.append(rrset.to_text())

    apex = zone.apex
    soa = apex.rrsets[dns.rdatatype.SOA]
    emit(soa.rrset)
    emit(soa.sigs)
    nodes = sorted(zone.nodes.values(), key=lambda n: name_key(n.name))
    for node in nodes:
        for rdtype in sorted(node.rrsets):
            if node is apex and rdtype == dns.rdatatype.SOA:
                continue
            emit(node.rrsets[rdtype].rrset)
            emit(node.rrsets[rdtype].sigs)
        if node.nsec is not None:
            emit(node.nsec.rrset)
            emit(node.nsec.sigs)
        _glue(zone, node, emit)
    for v4, _v6 in zone.n3_records:
        emit(v4.rrset)
        emit(v4.sigs)
    return "\n".join(lines) + "\n"


def _glue(zone: Zone, node: Node, emit: object) -> None:
    if not node.cut:
        return
    for name in sorted(zone.glue, key=name_key):
        if name.is_subdomain(node.name):
            for rrset in zone.glue[name]:
                emit(rrset)  # type: ignore[operator]


def export_zones(
    scenario: Scenario,
    directory: Path,
    state_dir: Path | None = None,
    epoch: int | None = None,
) -> list[Path]:
    """Sign every zone (keys from the state directory) and write the files."""
    builder = ZoneBuilder(scenario, state_dir_for(scenario, state_dir))
    built = builder.build(epoch, dynamic=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerError(
            f"{directory}: cannot create: {exc.strerror or exc}"
        ) from None
    paths = []
    for zone in built.served.zones:
        path = directory / zone_file_name(zone.text)
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(zone_text(zone, built.epoch), encoding="ascii")
            os.replace(tmp, path)
        except OSError as exc:
            raise ServerError(f"{path}: cannot write: {exc.strerror or exc}") from None
        paths.append(path)
    return paths
