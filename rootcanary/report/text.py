"""How the report writes times, durations and shares (plots and HTML alike)."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def duration(seconds: float) -> str:
    """``30 s``, ``5 min``, ``1 h``, ``1 d``, ``90 s``: the largest exact unit."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g} s"
    for size, unit in _UNITS:
        if whole % size == 0:
            return f"{whole // size} {unit}"
    return f"{whole} s"  # unreachable: 1 divides everything


def moment(value: datetime | None) -> str:
    """ISO 8601 UTC to the second (``2026-12-03T18:00:00Z``), ``-`` for None."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def offset(value: datetime | None, start: datetime | None) -> str:
    """``+185 s`` from the start of a run; empty without both times."""
    if value is None or start is None:
        return ""
    seconds = (value - start).total_seconds()
    return f"{seconds:+.0f} s"


def share(count: int, total: int) -> str:
    """``3 (42.9%)``; ``0`` when nothing was counted."""
    if not total:
        return str(count)
    return f"{count} ({100 * count / total:.1f}%)"
