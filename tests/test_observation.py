from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rootcanary.observation import Observation, Tally, write_csv
from rootcanary.readers.sources import read_observations


def _obs(**over: object) -> Observation:
    base = dict(
        platform="local",
        measurement="valid",
        probe="lab",
        resolver="127.0.1.1",
        af=4,
        time=datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC),
        qname="x.valid.canary.test.",
        qtype="A",
        rcode="NOERROR",
        ad=True,
        answers=("192.0.2.1",),
        ede=(),
        error=None,
        role="valid",
    )
    base.update(over)
    return Observation(**base)  # type: ignore[arg-type]


def test_json_round_trip_keeps_contract_order() -> None:
    obs = _obs(extra={"rtt_ms": 1.5})
    line = obs.to_json()
    data = json.loads(line)
    assert list(data)[:13] == [
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
    ]
    assert data["time"] == "2026-12-03T12:00:00.123456Z"
    back = Observation.from_dict(data)
    assert back == obs
    assert back.extra == {"rtt_ms": 1.5}


def test_bad_lines_are_counted_by_reason(tmp_path: Path) -> None:
    good = _obs().to_json()
    path = tmp_path / "o.jsonl"
    path.write_text(
        "\n".join([good, "{not json", "[1]", json.dumps({"platform": "x"}), good, ""])
    )
    tally = Tally()
    out = list(read_observations([path], tally))
    assert len(out) == 2
    assert tally.read == 2
    assert tally.skipped["bad JSON"] == 1
    assert tally.skipped["neither an observation nor a DNS result"] == 1
    assert (
        sum(v for k, v in tally.skipped.items() if k.startswith("bad observation")) == 1
    )
    assert tally.examples["bad JSON"].endswith("o.jsonl:2")


def test_csv_joins_lists() -> None:
    out = io.StringIO()
    write_csv([_obs(ede=(6, 9), answers=("a", "b"))], out)
    header, row = out.getvalue().splitlines()
    assert header.startswith("platform,measurement,probe")
    assert ",a;b,6;9," in row
