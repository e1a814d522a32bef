"""Which files to read, and what each JSON value in them is.

``rootcanary observations`` and ``rootcanary classify`` take files and
directories. A campaign directory (one with a ``manifest.json``) contributes
its ``observations/`` and ``results/`` trees and its manifest (roles of
measurements, the test zone); any other directory is searched recursively for
data files. Inside a file each value is told apart on its own: an observation
has ``platform``, a RIPE Atlas result has ``msm_id``/``prb_id``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootcanary import names
from rootcanary.campaign import MANIFEST, Manifest, is_campaign, load_manifest
from rootcanary.errors import DataError
from rootcanary.observation import Observation, Tally
from rootcanary.readers import atlas
from rootcanary.readers.lines import Where, describe, values

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CAMPAIGN_PARTS = ("observations", "results")
NOT_A_RECORD = "neither an observation nor a DNS result"


@dataclass(frozen=True)
class Inputs:
    """The files to read and what the campaign manifests say about them."""

    files: tuple[Path, ...]
    roles: dict[str, str] = field(default_factory=dict)
    zone: str | None = None
    keytags: tuple[int, ...] = ()
    manifests: tuple[Path, ...] = ()


def is_data_file(path: Path) -> bool:
    """A data file by its name; hidden files are writers' temporaries."""
    name = path.name.lower()
    return (
        name != MANIFEST and not name.startswith(".") and name.endswith(DATA_SUFFIXES)
    )


def gather(paths: Iterable[Path]) -> Inputs:
    """Expand files and directories; merge the manifests of campaigns found."""
    files: list[Path] = []
    manifests: list[tuple[Path, Manifest]] = []
    for path in paths:
        if path.is_dir():
            _walk(path, files, manifests)
        elif path.exists():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or directory")
    roles: dict[str, str] = {}
    zone: str | None = None
    keytags: list[int] = []
    for where, manifest in manifests:
        for measurement, role in manifest.roles.items():
            known = roles.setdefault(measurement, role)
            if known != role:
                raise DataError(
                    f"{where}: measurement {measurement} has role {role!r} here "
                    f"but {known!r} in another campaign; classify them apart"
                )
        own = _manifest_zone(manifest)
        if own is not None:
            if zone is not None and own != zone:
                raise DataError(
                    f"{where}: test zone {own} differs from {zone} of another "
                    "campaign; classify them apart or give --zone"
                )
            zone = own
        keytags.extend(t for t in _scenario_keytags(manifest) if t not in keytags)
    unique = sorted(dict.fromkeys(files))
    return Inputs(
        files=tuple(unique),
        roles=roles,
        zone=zone,
        keytags=tuple(keytags),
        manifests=tuple(where for where, _ in manifests),
    )


def _walk(
    directory: Path, files: list[Path], manifests: list[tuple[Path, Manifest]]
) -> None:
    if is_campaign(directory):
        manifests.append((directory / MANIFEST, load_manifest(directory)))
        for part in CAMPAIGN_PARTS:
            sub = directory / part
            if sub.is_dir():
                files.extend(p for p in sorted(sub.rglob("*")) if _is_data(p))
        return
    for child in sorted(directory.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            _walk(child, files, manifests)
        elif _is_data(child):
            files.append(child)


def _is_data(path: Path) -> bool:
    return path.is_file() and is_data_file(path)


def _manifest_zone(manifest: Manifest) -> str | None:
    zone = manifest.extra.get("zone")
    if isinstance(zone, str) and zone.strip():
        return names.absolute(zone)
    tests = _scenario_tests(manifest)
    value = tests.get("zone") if tests else None
    return names.absolute(value) if isinstance(value, str) and value else None


def _scenario_keytags(manifest: Manifest) -> tuple[int, ...]:
    tests = _scenario_tests(manifest)
    tags = tests.get("keytags") if tests else None
    if isinstance(tags, list):
        return tuple(t for t in tags if isinstance(t, int) and 0 <= t <= 65535)
    return ()


def _scenario_tests(manifest: Manifest) -> dict[str, Any] | None:
    """The raw ``[tests]`` table of the scenario text kept in the manifest."""
    if not manifest.scenario_text:
        return None
    try:
        data = tomllib.loads(manifest.scenario_text)
    except tomllib.TOMLDecodeError:
        return None
    tests = data.get("tests")
    return tests if isinstance(tests, dict) else None


def scenario_tests(path: Path) -> tuple[str | None, tuple[int, ...]]:
    """(zone, key tags) of a scenario file's ``[tests]`` section."""
    from rootcanary.scenario import load_scenario

    scenario = load_scenario(path)
    if scenario.tests is None:
        return None, ()
    return scenario.tests.zone, scenario.tests.keytags


def records(files: Iterable[Path], tally: Tally) -> Iterator[tuple[Where, str, Any]]:
    """``(where, kind, value)`` for every JSON value; kind is observation/atlas.

    Values of neither kind are counted in the tally and not yielded.
    """
    for path in files:
        for where, value in values(path, tally):
            if isinstance(value, dict):
                if "platform" in value:
                    yield where, "observation", value
                    continue
                if atlas.is_atlas_result(value):
                    yield where, "atlas", value
                    continue
            tally.skip(NOT_A_RECORD, describe(where))


def read_observations(files: Iterable[Path], tally: Tally) -> Iterator[Observation]:
    """Observations from observation lines and raw Atlas results alike."""
    for where, kind, value in records(files, tally):
        if kind == "atlas":
            yield from atlas.observations(value, where, tally)
            continue
        try:
            found = Observation.from_dict(value)
        except (ValueError, TypeError) as exc:
            tally.skip(f"bad observation: {exc}", describe(where))
            continue
        tally.ok()
        yield found
