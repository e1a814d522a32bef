"""The observation record: what every backend writes and the classifier reads.

One JSON object per line (SPEC, "Observation"). The contract fields keep their
meaning forever; extra fields may follow them. ``role`` is the extra field most
backends add: what the query was for (see :mod:`rootcanary.names`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

SCHEMA_VERSION = 1

#: The contract fields, in the order they are written.
CONTRACT_FIELDS: tuple[str, ...] = (
    "platform",
    "measurement",
    "probe",
    "resolver",
    "af",
    "time",
    "qname",
    "qtype",
    "rcode",
    "ad",
    "answers",
    "ede",
    "error",
)
PLATFORMS = ("atlas", "proxy", "local")


@dataclass(frozen=True, slots=True)
class Observation:
    """One response to one query, or one failed attempt (``rcode`` None)."""

    platform: str
    measurement: str | int
    probe: str | int
    resolver: str | None
    af: int | None
    time: datetime
    qname: str
    qtype: str
    rcode: str | None
    ad: bool | None
    answers: tuple[str, ...] = ()
    ede: tuple[int, ...] = ()
    error: str | None = None
    role: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "platform": self.platform,
            "measurement": self.measurement,
            "probe": self.probe,
            "resolver": self.resolver,
            "af": self.af,
            "time": format_time(self.time),
            "qname": self.qname,
            "qtype": self.qtype,
            "rcode": self.rcode,
            "ad": self.ad,
            "answers": list(self.answers),
            "ede": list(self.ede),
            "error": self.error,
        }
        if self.role is not None:
            out["role"] = self.role
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        """Build from a decoded JSON line; raises ValueError naming the bad field."""
        missing = [name for name in CONTRACT_FIELDS if name not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        platform = data["platform"]
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")
        rcode, ad, af = data["rcode"], data["ad"], data["af"]
        if rcode is not None and not isinstance(rcode, str):
            raise ValueError("rcode must be a mnemonic string or null")
        if ad is not None and not isinstance(ad, bool):
            raise ValueError("ad must be true, false or null")
        if af not in (4, 6, None):
            raise ValueError("af must be 4, 6 or null")
        answers, ede = data["answers"], data["ede"]
        if not isinstance(answers, list) or not all(
            isinstance(a, str) for a in answers
        ):
            raise ValueError("answers must be a list of strings")
        if not isinstance(ede, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in ede
        ):
            raise ValueError("ede must be a list of integers")
        if not isinstance(data["qname"], str) or not isinstance(data["qtype"], str):
            raise ValueError("qname and qtype must be strings")
        role = data.get("role")
        extra = {
            k: v for k, v in data.items() if k not in CONTRACT_FIELDS and k != "role"
        }
        return cls(
            platform=platform,
            measurement=data["measurement"],
            probe=data["probe"],
            resolver=data["resolver"],
            af=af,
            time=parse_time(data["time"]),
            qname=data["qname"],
            qtype=data["qtype"],
            rcode=rcode,
            ad=ad,
            answers=tuple(answers),
            ede=tuple(ede),
            error=data["error"],
            role=role if isinstance(role, str) else None,
            extra=extra,
        )


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when present."""
    moment = moment.astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_time(value: Any) -> datetime:
    """ISO 8601 (``Z`` or offset) or Unix seconds, as an aware UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise ValueError(f"time must be ISO 8601 text, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"time is not ISO 8601: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Tally:
    """Counts of records read and of records skipped, by reason.

    Nothing is dropped silently: every reader takes a Tally and every command
    reports it on stderr (see :meth:`summary`).
    """

    def __init__(self) -> None:
        self.read = 0
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def ok(self, count: int = 1) -> None:
        self.read += count

    def skip(self, reason: str, where: str = "") -> None:
        self.skipped[reason] += 1
        if where:
            self.examples.setdefault(reason, where)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: Tally) -> None:
        self.read += other.read
        self.skipped.update(other.skipped)
        for reason, where in other.examples.items():
            self.examples.setdefault(reason, where)

    def summary(self, noun: str = "records") -> list[str]:
        lines = [f"{self.read} {noun} read, {self.total_skipped} skipped"]
        for reason, count in sorted(
            self.skipped.items(), key=lambda kv: (-kv[1], kv[0])
        ):
            where = self.examples.get(reason)
            lines.append(
                f"  {count} {reason}" + (f" (first at {where})" if where else "")
            )
        return lines


def write_jsonl(observations: Iterable[Observation], out: IO[str]) -> int:
    count = 0
    for observation in observations:
        out.write(observation.to_json() + "\n")
        count += 1
    return count


CSV_FIELDS = (*CONTRACT_FIELDS, "role")


def write_csv(observations: Iterable[Observation], out: IO[str]) -> int:
    """CSV with the contract columns; lists are joined with ``;``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    count = 0
    for observation in observations:
        row = observation.to_dict()
        writer.writerow([csv_cell(row.get(name)) for name in CSV_FIELDS])
        count += 1
    return count


def csv_cell(value: Any) -> str:
    """One CSV cell: null empty, booleans true/false, lists joined with ``;``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)
