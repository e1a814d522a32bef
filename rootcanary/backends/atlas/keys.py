"""Finding the RIPE Atlas API key: ``--key``, then the environment, then a file.

The config file is ``<user config dir>/rootcanary/atlas.toml`` (platformdirs;
``~/.config/rootcanary/atlas.toml`` on Linux)::

    key = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"

It should be readable by its owner only; rootcanary warns otherwise. The key
is wrapped in a :class:`~rootcanary.secrets.Secret` as soon as it is read.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from rootcanary.errors import ConfigError
from rootcanary.secrets import Secret

log = logging.getLogger("rootcanary.atlas")

ENV_KEY = "RIPE_ATLAS_CREATE_KEY"


def config_file() -> Path:
    return Path(platformdirs.user_config_dir("rootcanary")) / "atlas.toml"


@dataclass(frozen=True)
class FoundKey:
    key: Secret
    source: str  # "--key", the variable's name or the file's path: never the key


def find_key(given: str | None = None, path: Path | None = None) -> FoundKey | None:
    """The first key found, or None; a config file that cannot be read fails."""
    if given:
        return FoundKey(Secret(given.strip()), "--key")
    from_env = os.environ.get(ENV_KEY, "").strip()
    if from_env:
        return FoundKey(Secret(from_env), ENV_KEY)
    path = path or config_file()
    if not path.is_file():
        return None
    try:
        mode = path.stat().st_mode
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError:
        # The parser's message quotes the offending line, which may hold the key.
        raise ConfigError(f"{path}: not valid TOML") from None
    value = data.get("key")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: key: expected the API key as a string")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s can be read by other users; chmod 600 it", path)
    return FoundKey(Secret(value.strip()), str(path))


def require_key(given: str | None = None, path: Path | None = None) -> FoundKey:
    found = find_key(given, path)
    if found is None:
        raise ConfigError(
            "no RIPE Atlas API key: give --key, set "
            f'{ENV_KEY} or write key = "..." into {path or config_file()} '
            "(create one at https://atlas.ripe.net/keys/ with the permissions "
            "to create and to list your measurements)"
        )
    return found
