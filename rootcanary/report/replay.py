"""Read a replay's ``replay.json`` summary, surviving damage item by item.

The format is the contract between ``rootcanary testbed run`` and the report
(times ISO 8601 UTC with ``Z``, offsets in seconds from ``started``). A file
that is not a JSON object gives no replay (the report still shows the
campaign); an item of a list that lacks what it needs is skipped and counted
by reason, the rest is kept. Unknown keys are ignored: a newer writer may add
them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from rootcanary.observation import Tally, parse_time
from rootcanary.report.model import (
    DnskeyRate,
    Key,
    KeytagSet,
    Phase,
    Replay,
    Restart,
    Verdict,
)

REPLAY_FILE = "replay.json"
SCHEMA_VERSION = 1

T = TypeVar("T")


class _Bad(ValueError):
    """An item of replay.json that cannot be used; the message says why."""


def load_replay(path: Path, tally: Tally) -> Replay | None:
    """The replay summary at ``path``, or None when it cannot be read at all."""
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        tally.skip(f"{REPLAY_FILE}: cannot read: {exc.strerror or exc}", where)
        return None
    except (UnicodeDecodeError, json.JSONDecodeError):
        tally.skip(f"{REPLAY_FILE}: not JSON", where)
        return None
    if not isinstance(data, dict):
        tally.skip(f"{REPLAY_FILE}: not a JSON object", where)
        return None
    tally.ok()
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        # Read what matches anyway: the report says which version it saw.
        tally.skip(f"{REPLAY_FILE}: unknown schema_version {version!r}", where)
    scenario = data.get("scenario")
    scenario = scenario if isinstance(scenario, dict) else {}
    return Replay(
        schema_version=version,
        scenario_name=_text_or_none(scenario.get("name")),
        scenario_path=_text_or_none(scenario.get("path")),
        scenario_text=_text_or_none(scenario.get("text")),
        started=_time_field(data, "started", tally, where),
        finished=_time_field(data, "finished", tally, where),
        parameters=_parameters(data.get("parameters")),
        keys=_keys(data.get("keys")),
        phases=_items(data, "phases", _phase, tally, where),
        restarts=_items(data, "restarts", _restart, tally, where),
        verdicts=_items(data, "verdicts", _verdict, tally, where),
        keytag_sets=_items(data, "keytag_sets", _keytag_set, tally, where),
        dnskey_rates=_items(data, "dnskey_rates", _dnskey_rate, tally, where),
    )


def _items(
    data: dict[str, Any],
    key: str,
    build: Callable[[dict[str, Any]], T],
    tally: Tally,
    where: str,
) -> tuple[T, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        tally.skip(f"{REPLAY_FILE}: {key} is not a list", where)
        return ()
    out = []
    for index, item in enumerate(value):
        try:
            if not isinstance(item, dict):
                raise _Bad("not an object")
            out.append(build(item))
        except _Bad as exc:
            tally.skip(
                f"{REPLAY_FILE}: bad {key} item: {exc}", f"{where} {key}[{index}]"
            )
    return tuple(out)


def _time_field(
    data: dict[str, Any], key: str, tally: Tally, where: str
) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        tally.skip(f"{REPLAY_FILE}: bad {key} time", where)
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _required_text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(f"no {key}")
    return value


def _time(item: dict[str, Any], key: str) -> datetime | None:
    if item.get(key) is None:
        return None
    return _required_time(item, key)


def _required_time(item: dict[str, Any], key: str) -> datetime:
    value = item.get(key)
    if value is None:
        raise _Bad(f"no {key}")
    try:
        return parse_time(value)
    except ValueError:
        raise _Bad(f"bad {key} time") from None


def _number(item: dict[str, Any], key: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{key} is not a number")
    return float(value)


def _bool(item: dict[str, Any], key: str) -> bool | None:
    value = item.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _Bad(f"{key} is not true, false or null")


def _tag(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return None


def _parameters(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(
        (str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
        for k, v in value.items()
    )


def _keys(value: Any) -> tuple[Key, ...]:
    if not isinstance(value, dict):
        return ()
    out = []
    for role, item in value.items():
        if isinstance(item, dict):
            slot = item.get("slot")
            out.append(
                Key(
                    role=str(role),
                    slot=slot if isinstance(slot, str) else None,
                    tag=_tag(item.get("tag")),
                    revoked_tag=_tag(item.get("revoked_tag")),
                )
            )
    return tuple(out)


def _phase(item: dict[str, Any]) -> Phase:
    at = _required_time(item, "at")
    return Phase(_required_text(item, "state"), at, _number(item, "offset"))


def _restart(item: dict[str, Any]) -> Restart:
    at = _required_time(item, "at")
    return Restart(_required_text(item, "resolver"), at, _number(item, "offset"))


def _verdict(item: dict[str, Any]) -> Verdict:
    notes = item.get("notes")
    return Verdict(
        resolver=_required_text(item, "resolver"),
        implementation=_text_or_none(item.get("implementation")),
        variant=_text_or_none(item.get("variant")),
        address=_text_or_none(item.get("address")),
        expected=_text_or_none(item.get("expected")),
        outcome=_text_or_none(item.get("outcome")),
        ok=_bool(item, "ok"),
        trusted_new_at=_time(item, "trusted_new_at"),
        secure_through_roll=_bool(item, "secure_through_roll"),
        first_bogus_at=_time(item, "first_bogus_at"),
        dropped_revoked_at=_time(item, "dropped_revoked_at"),
        notes=notes if isinstance(notes, str) else "",
    )


def _keytag_set(item: dict[str, Any]) -> KeytagSet:
    tags = item.get("tags")
    if not isinstance(tags, list):
        raise _Bad("tags is not a list")
    clean = tuple(t for t in (_tag(v) for v in tags) if t is not None)
    if len(clean) != len(tags):
        raise _Bad("a tag is not a number 0..65535")
    at = _required_time(item, "time")
    return KeytagSet(_required_text(item, "src"), at, clean)


def _dnskey_rate(item: dict[str, Any]) -> DnskeyRate:
    queries = item.get("queries")
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 0:
        raise _Bad("queries is not a count")
    return DnskeyRate(
        src=_required_text(item, "src"),
        phase=_required_text(item, "phase"),
        queries=queries,
        seconds=_number(item, "seconds"),
        per_minute=_number(item, "per_minute"),
    )
