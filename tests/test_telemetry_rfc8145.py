"""RFC 8145 telemetry from the published root-server data and our query log."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from shared_data import RFC8145
from typer.testing import CliRunner

from rootcanary.cli import app
from rootcanary.observation import Tally
from rootcanary.telemetry import telemetry

DATA = RFC8145
runner = CliRunner()


def test_reproduces_the_published_daily_counts_exactly() -> None:
    result = runner.invoke(
        app,
        ["telemetry", str(DATA), "--keytag", "19036", "--keytag", "20326", "-f", "csv"],
    )
    assert result.exit_code == 0, result.output
    expected = (DATA / "expected-daily-counts.csv").read_text()
    assert result.stdout == expected


def _log(
    time: str, src: str, qname: str, ta: list[int] | None, key_tag: list[int] | None
) -> str:
    record = {
        "time": time,
        "transport": "udp",
        "src": src,
        "sport": 5300,
        "dst": "127.0.2.1",
        "dport": 53,
        "id": 1,
        "qname": qname,
        "qtype": "NULL",
        "qclass": "IN",
        "opcode": "QUERY",
        "rd": False,
        "cd": False,
        "edns": 0,
        "bufsize": 1232,
        "do": True,
        "opts": [14] if key_tag else [],
        "edns_key_tag": key_tag,
        "ta": ta,
        "rcode": "NXDOMAIN",
        "size": 100,
        "tc": False,
        "zone": ".",
    }
    return json.dumps(record)


def test_query_log_signals_per_source_and_day(tmp_path: Path) -> None:
    lines = [
        _log("2026-10-10T23:59:59.000001Z", "127.0.1.1", "_ta-4f66.", [20326], None),
        _log(
            "2026-10-10T12:00:00.000000Z",
            "127.0.1.1",
            "_Ta-4F66-9728.",
            [20326, 38696],
            None,
        ),
        _log("2026-10-10T12:00:01.000000Z", "127.0.1.2", ".", None, [20326]),
        _log("2026-10-11T00:00:00.000000Z", "127.0.1.2", ".", None, [20326, 38696]),
        _log("2026-10-11T00:00:01.000000Z", "127.0.1.3", "example.", None, None),
        '{"time": null, "src": "x"}',
        "{broken",
    ]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "query.jsonl.gz").write_bytes(
        gzip.compress(("\n".join(lines) + "\n").encode())
    )
    tally = Tally()
    result = telemetry([tmp_path], tally, (20326, 38696))
    assert [(d.date, d.counts, d.any) for d in result.days] == [
        ("2026-10-10", (2, 1), 2),
        ("2026-10-11", (1, 1), 1),
    ]
    assert tally.read == 5
    assert dict(tally.skipped) == {
        "query log line without time and src": 1,
        "bad JSON": 1,
    }
    history = {s.source: s for s in result.sources}
    assert history["127.0.1.2"].first == ("2026-10-10", "2026-10-11")
    assert history["127.0.1.2"].days == (2, 1)
    assert [s.source for s in result.never(38696)] == []
    assert [s.source for s in result.never(20326)] == []


def test_sources_file_shows_who_never_signalled_the_new_key(tmp_path: Path) -> None:
    dataset = tmp_path / "d.dat"
    dataset.write_text(
        "2019-01-10 A 19036,20326 1\n"
        "2019-01-11 A 20326 3\n"
        "2019-01-10 B 19036 1\n"
        "2019-01-12 C 5344 1\n"
        "not a line\n"
        "2019-01-12 D 20326,x 1\n"
    )
    target = tmp_path / "sources.csv"
    result = runner.invoke(
        app,
        [
            "telemetry",
            str(dataset),
            "--keytag",
            "19036",
            "--keytag",
            "20326",
            "--sources",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    assert target.read_text().splitlines() == [
        "source,first_t19036,last_t19036,days_t19036,first_t20326,last_t20326,days_t20326",
        "A,2019-01-10,2019-01-10,1,2019-01-10,2019-01-11,2",
        "B,2019-01-10,2019-01-10,1,,,0",
    ]
    tally = Tally()
    found = telemetry([dataset], tally, (19036, 20326))
    assert [s.source for s in found.never(20326)] == ["B"]
    assert tally.skipped == {"not a dataset line (date source keytags count)": 2}
    csv_out = runner.invoke(
        app, ["telemetry", str(dataset), "-f", "csv", "--keytag", "20326"]
    )
    assert csv_out.stdout.splitlines() == [
        "date,t20326,tiana",
        "2019-01-10,1,1",
        "2019-01-11,1,1",
        "2019-01-12,0,0",
    ]
