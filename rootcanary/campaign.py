"""A campaign directory: the manifest plus what a backend collected.

Layout (every backend)::

    CAMPAIGN/
      manifest.json          this module; written atomically after every change
      observations/*.jsonl   observations (local backend; proxy after the join)
      ...                    backend-specific raw data (Atlas results, proxy logs)

The manifest records the scenario (path, text and digest), the backend, the
roles of measurements (``{"12345": "valid"}``) and the backend's own entries.
It never holds a secret.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rootcanary.errors import ConfigError, DataError

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1


@dataclass
class Manifest:
    """The campaign's record. Mutable on purpose: backends update and save it."""

    name: str
    backend: str
    created: str
    scenario_path: str | None = None
    scenario_sha256: str | None = None
    scenario_text: str | None = None
    roles: dict[str, str] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": MANIFEST_SCHEMA,
            "name": self.name,
            "backend": self.backend,
            "created": self.created,
            "scenario_path": self.scenario_path,
            "scenario_sha256": self.scenario_sha256,
            "scenario_text": self.scenario_text,
            "roles": dict(sorted(self.roles.items())),
            "entries": self.entries,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Manifest:
        try:
            if data.get("schema_version") != MANIFEST_SCHEMA:
                raise ValueError(
                    f"unknown schema_version {data.get('schema_version')!r}"
                )
            return cls(
                name=str(data["name"]),
                backend=str(data["backend"]),
                created=str(data["created"]),
                scenario_path=data.get("scenario_path"),
                scenario_sha256=data.get("scenario_sha256"),
                scenario_text=data.get("scenario_text"),
                roles={
                    str(k): str(v) for k, v in dict(data.get("roles") or {}).items()
                },
                entries=list(data.get("entries") or []),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: not a rootcanary manifest: {exc}") from None


def now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def manifest_path(directory: Path) -> Path:
    return directory / MANIFEST


def is_campaign(directory: Path) -> bool:
    return manifest_path(directory).is_file()


def load_manifest(directory: Path) -> Manifest:
    path = manifest_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{directory}: no {MANIFEST}: not a campaign directory"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a rootcanary manifest")
    return Manifest.from_dict(data, str(path))


def open_manifest(
    directory: Path,
    backend: str,
    name: str,
    scenario_path: Path | None = None,
    scenario_text: str | None = None,
    scenario_sha256: str | None = None,
) -> Manifest:
    """The campaign's manifest, or a new one (not yet saved) for ``backend``.

    A directory that holds another backend's campaign is refused: mixing their
    results would make both unreadable.
    """
    if is_campaign(directory):
        manifest = load_manifest(directory)
        if manifest.backend != backend:
            raise ConfigError(
                f"{directory} is a {manifest.backend} campaign, not a {backend} one; "
                "choose another --campaign"
            )
        return manifest
    directory.mkdir(parents=True, exist_ok=True)
    return Manifest(
        name=name,
        backend=backend,
        created=now_iso(),
        scenario_path=str(scenario_path) if scenario_path else None,
        scenario_sha256=scenario_sha256,
        scenario_text=scenario_text,
    )


def save_manifest(directory: Path, manifest: Manifest) -> None:
    """Write atomically: a crash leaves the old or the new manifest, never half."""
    write_atomic(
        manifest_path(directory), json.dumps(manifest.to_dict(), indent=2) + "\n"
    )


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` (UTF-8) or bytes, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
