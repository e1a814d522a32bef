"""An Atlas campaign in its directory: the plan, and what exists of it.

The manifest (:mod:`rootcanary.campaign`) holds, besides the scenario:

* ``entries``: one per planned measurement (a *slot*): its request and
  position, role, address family, the exact definition, and once created the
  measurement id (``msm_id``) and creation time (``created``), later
  ``stopped``;
* ``extra["requests"]``: each request body without its definitions (probes,
  one-off flag, times), so the bodies can be rebuilt exactly;
* ``extra["tag"]`` (the campaign's measurement tag), ``extra["zone"]``,
  ``extra["server"]``, ``extra["attempted"]`` (whether any creation request
  was ever sent) and the probe split;
* ``roles``: ``{"<msm_id>": "<role>"}`` for the classifier.

It never holds the API key.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootcanary.backends.atlas.definitions import Plan, Slot
from rootcanary.campaign import Manifest, is_campaign, load_manifest, save_manifest
from rootcanary.errors import AtlasError

LOCK = ".lock"


@dataclass
class AtlasCampaign:
    """A campaign directory's manifest, read as an Atlas plan."""

    directory: Path
    manifest: Manifest

    @property
    def tag(self) -> str:
        return str(self.manifest.extra["tag"])

    @property
    def attempted(self) -> bool:
        return bool(self.manifest.extra.get("attempted"))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.manifest.entries

    def plan(self) -> Plan:
        return Plan(self.tag, tuple(self.bodies()), tuple(self.slots()))

    def slots(self) -> list[Slot]:
        return [
            Slot(e["slot"], e["request"], e["position"], e["role"], e["af"])
            for e in self.entries
        ]

    def bodies(self) -> list[dict[str, Any]]:
        out = []
        for index, meta in enumerate(self.manifest.extra["requests"]):
            definitions = [
                e["definition"]
                for e in sorted(self.entries, key=lambda e: e["position"])
                if e["request"] == index
            ]
            out.append({"definitions": definitions, **meta})
        return out

    def missing(self) -> dict[int, list[int]]:
        """Positions not yet created, per request."""
        out: dict[int, list[int]] = {}
        for entry in self.entries:
            if entry.get("msm_id") is None:
                out.setdefault(entry["request"], []).append(entry["position"])
        return {request: sorted(p) for request, p in sorted(out.items())}

    def entry(self, request: int, position: int) -> dict[str, Any]:
        for entry in self.entries:
            if entry["request"] == request and entry["position"] == position:
                return entry
        raise KeyError((request, position))

    def created(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e.get("msm_id") is not None]

    def record(self, entry: dict[str, Any], msm_id: int, when: str) -> None:
        entry["msm_id"] = msm_id
        entry["created"] = when
        self.manifest.roles[str(msm_id)] = entry["role"]

    def save(self) -> None:
        save_manifest(self.directory, self.manifest)


def new_nonce() -> str:
    return secrets.token_hex(3)


def load_campaign(directory: Path) -> AtlasCampaign:
    manifest = load_manifest(directory)
    if manifest.backend != "atlas":
        raise AtlasError(
            f"{directory}: a {manifest.backend} campaign, not a RIPE Atlas one"
        )
    if "tag" not in manifest.extra or "requests" not in manifest.extra:
        raise AtlasError(f"{directory}: the manifest has no Atlas plan")
    return AtlasCampaign(directory, manifest)


def existing_campaign(directory: Path) -> AtlasCampaign | None:
    return load_campaign(directory) if is_campaign(directory) else None


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One rootcanary at a time per campaign (two could both create a slot)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AtlasError(
                f"{directory}: another rootcanary is working on this campaign"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock
