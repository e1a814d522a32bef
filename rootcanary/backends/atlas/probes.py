"""Probe selection: scenario selections to the ``probes`` lists of requests.

A selection that fits the per-measurement probe limit goes to the API as it
is (``{"type": "country", "value": "NL", "requested": 50}``). When the
selections ask for more probes than one measurement may have, splitting them
by count would let the platform pick overlapping probes for the parts, so
they are resolved into probe ids first (from the probe API, or from a saved
probe list) and the ids are cut into disjoint chunks, one request each.
"""

from __future__ import annotations

import bz2
import gzip
import ipaddress
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootcanary.errors import ConfigError, DataError
from rootcanary.scenario.atlas import ProbeSelection

Source = dict[str, Any]
CONNECTED = 1  # probe status id "Connected"


@dataclass(frozen=True)
class ProbeSplit:
    """What the selections become: one ``probes`` list per request."""

    requests: tuple[tuple[Source, ...], ...]
    resolved: bool  # True when built from a probe list (ids are exact)
    matched: int | None = None  # probes that matched, when resolved


def source_of(selection: ProbeSelection, requested: int) -> Source:
    """The API form of a selection (``AtlasSource.build_api_struct`` layout)."""
    kind, value = selection.kind, selection.value
    if kind == "all":
        source: Source = {"type": "area", "value": "WW", "requested": requested}
    elif kind == "ids":
        assert isinstance(value, tuple)
        ids = ",".join(str(i) for i in value)
        source = {"type": "probes", "value": ids, "requested": requested}
    else:
        source = {"type": kind, "value": value, "requested": requested}
    if selection.include_tags or selection.exclude_tags:
        source["tags"] = {
            "include": list(selection.include_tags),
            "exclude": list(selection.exclude_tags),
        }
    return source


def needs_probe_list(selections: Sequence[ProbeSelection], max_probes: int) -> bool:
    """Whether splitting needs to know which probes exist."""
    if all(s.explicit for s in selections):
        return False
    if any(s.requested is None for s in selections):
        return True
    return sum(_wanted(s) for s in selections) > max_probes


def split_without_list(
    selections: Sequence[ProbeSelection], max_probes: int
) -> ProbeSplit:
    """Selections that need no probe list: as they are, or id lists chunked."""
    total = sum(_wanted(s) for s in selections)
    if total <= max_probes:
        sources = tuple(source_of(s, _wanted(s)) for s in selections)
        return ProbeSplit((sources,), resolved=all(s.explicit for s in selections))
    ids: list[int] = []
    for selection in selections:
        ids.extend(_pick(_explicit_ids(selection), selection.requested, selection))
    return _chunked(sorted(set(ids)), max_probes, selections)


def split_with_list(
    selections: Sequence[ProbeSelection],
    probes: Iterable[dict[str, Any]],
    max_probes: int,
    af: int = 4,
) -> ProbeSplit:
    """Resolve every selection against a probe list, then cut into chunks."""
    catalogue = [p for p in probes if isinstance(p, dict) and _probe_id(p)]
    ids: set[int] = set()
    for selection in selections:
        if selection.kind in ("region",) or (
            selection.kind == "area" and selection.value != "WW"
        ):
            raise ConfigError(
                f"probe selection {selection.kind} = {selection.value!r} asks for "
                f"more than {max_probes} probes, and rootcanary cannot tell which "
                "probes it covers; give a number of probes at most the limit, or "
                "select by country, asn, prefix or ids"
            )
        if selection.explicit:
            matched = list(_explicit_ids(selection))
        else:
            matched = sorted(
                _probe_id(p) for p in catalogue if matches(p, selection, af)
            )
        ids.update(_pick(matched, selection.requested, selection))
    if not ids:
        raise ConfigError("no connected probe matches the probe selection")
    split = _chunked(sorted(ids), max_probes, selections)
    return ProbeSplit(split.requests, resolved=True, matched=len(ids))


def api_filters(selection: ProbeSelection, af: int = 4) -> dict[str, Any]:
    """Server-side filters for the probe API (checked again by :func:`matches`)."""
    filters: dict[str, Any] = {"status": CONNECTED}
    if selection.kind == "country":
        filters["country_code"] = selection.value
    elif selection.kind == "asn":
        filters[f"asn_v{af}"] = selection.value
    elif selection.kind == "prefix":
        version = ipaddress.ip_network(str(selection.value)).version
        filters[f"prefix_v{version}"] = selection.value
    if selection.include_tags:
        filters["tags"] = ",".join(selection.include_tags)
    return filters


def matches(probe: dict[str, Any], selection: ProbeSelection, af: int = 4) -> bool:
    """Whether a probe (API or archive object) is connected and selected."""
    status = probe.get("status")
    status_id = status.get("id") if isinstance(status, dict) else status
    if status_id != CONNECTED:
        return False
    slugs = _tag_slugs(probe)
    if any(tag not in slugs for tag in selection.include_tags):
        return False
    if any(tag in slugs for tag in selection.exclude_tags):
        return False
    kind, value = selection.kind, selection.value
    if kind == "country":
        return bool(probe.get("country_code") == value)
    if kind == "asn":
        return value in (probe.get("asn_v4"), probe.get("asn_v6"))
    if kind == "prefix":
        network = ipaddress.ip_network(str(value))
        for key in (f"prefix_v{network.version}", f"address_v{network.version}"):
            text = probe.get(key)
            if text and _inside(str(text), network):
                return True
        return False
    return True  # all, area WW


def load_probe_file(path: Path) -> list[dict[str, Any]]:
    """A saved probe list: the API's pages or array, or a RIPE archive dump.

    The daily dumps at https://ftp.ripe.net/ripe/atlas/probes/archive/ are
    ``{"objects": [...]}`` (bz2); an API page is ``{"results": [...]}``.
    """
    try:
        raw = path.read_bytes()
        if path.suffix == ".bz2":
            raw = bz2.decompress(raw)
        elif path.suffix == ".gz":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read a probe list: {exc}") from None
    if isinstance(data, dict):
        data = data.get("objects", data.get("results"))
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of probes (or objects/results)")
    return [item for item in data if isinstance(item, dict)]


def _chunked(
    ids: list[int], size: int, selections: Sequence[ProbeSelection]
) -> ProbeSplit:
    requests = []
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        value = ",".join(str(i) for i in chunk)
        requests.append(({"type": "probes", "value": value, "requested": len(chunk)},))
    return ProbeSplit(tuple(requests), resolved=True, matched=len(ids))


def _wanted(selection: ProbeSelection) -> int:
    """How many probes a selection asks for (all listed ids by default)."""
    if selection.requested is not None:
        return selection.requested
    return len(_explicit_ids(selection)) if selection.explicit else 0


def _explicit_ids(selection: ProbeSelection) -> list[int]:
    assert isinstance(selection.value, tuple)
    return sorted(selection.value)


def _pick(
    ids: list[int], requested: int | None, selection: ProbeSelection
) -> list[int]:
    if requested is None or requested >= len(ids):
        return ids
    # A fixed seed per selection: the same probe list gives the same probes.
    seed = f"{selection.kind}:{selection.value}:{requested}"
    return sorted(random.Random(seed).sample(ids, requested))


def _probe_id(probe: dict[str, Any]) -> int:
    value = probe.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _tag_slugs(probe: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for tag in probe.get("tags") or ():
        if isinstance(tag, dict):
            out.add(str(tag.get("slug", "")))
        elif isinstance(tag, str):
            out.add(tag)  # the archive dumps list slugs as plain strings
    return out


def _inside(text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        other = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return other.version == network.version and other.subnet_of(network)  # type: ignore[arg-type]
