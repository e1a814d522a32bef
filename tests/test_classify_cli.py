"""``rootcanary classify`` and ``rootcanary observations`` end to end."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from shared_data import ATLAS_RESULTS
from test_classify_helpers import round_of
from typer.testing import CliRunner

from rootcanary.campaign import Manifest, now_iso, save_manifest
from rootcanary.cli import app
from rootcanary.readers.synthetic import write_campaign

runner = CliRunner()


@pytest.fixture(scope="module")
def atlas_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_campaign(tmp_path_factory.mktemp("atlas") / "c", 30, 3).directory


def _local_campaign(directory: Path) -> Path:
    """What the local backend writes: observations/ and a manifest."""
    (directory / "observations").mkdir(parents=True)
    rows = [*round_of("unbound", "ksk2024"), *round_of("bind", "nonv")]
    with (directory / "observations" / "round-1.jsonl").open("w") as handle:
        for row in rows:
            handle.write(row.to_json() + "\n")
    save_manifest(
        directory,
        Manifest(
            name="lab",
            backend="local",
            created=now_iso(),
            extra={"zone": "canary.test."},
        ),
    )
    return directory


def test_classify_prints_the_summary(atlas_campaign: Path) -> None:
    result = runner.invoke(app, ["classify", str(atlas_campaign)])
    assert result.exit_code == 0, result.output
    assert "Validation (vantage points" in result.stdout
    assert "Trust anchors per key tag" in result.stdout
    assert "38696" in result.stdout and "Vnew" in result.stdout


def test_classify_csv_to_stdout_is_the_records(atlas_campaign: Path) -> None:
    result = runner.invoke(app, ["classify", str(atlas_campaign), "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["platform"] for r in rows} == {"atlas"}
    assert {r["validation"] for r in rows} <= {"secure", "insecure", "bogus", "unknown"}
    assert "ta_38696" in rows[0] and "ta_20326_pattern" in rows[0]
    again = runner.invoke(app, ["classify", str(atlas_campaign), "-f", "csv"])
    assert again.stdout == result.stdout


def test_classify_writes_parquet_and_jsonl(
    atlas_campaign: Path, tmp_path: Path
) -> None:
    target = tmp_path / "states.parquet"
    result = runner.invoke(
        app,
        [
            "classify",
            str(atlas_campaign),
            "-o",
            str(target),
            "--event",
            "2026-10-11T01:00:00Z",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert {"funnel", "phase", "ta_38696"} <= set(table.column_names)
    lines = runner.invoke(
        app, ["classify", str(atlas_campaign), "-f", "jsonl", "--keytag", "38696"]
    )
    first = json.loads(lines.stdout.splitlines()[0])
    assert list(first["ta"]) == ["38696"]
    assert table.num_rows == len(lines.stdout.splitlines())


def test_local_campaign_and_role_option(tmp_path: Path) -> None:
    campaign = _local_campaign(tmp_path / "lab")
    result = runner.invoke(app, ["classify", str(campaign), "-f", "jsonl"])
    assert result.exit_code == 0, result.output
    states = {
        json.loads(x)["probe"]: json.loads(x)["validation"]
        for x in result.stdout.splitlines()
    }
    assert states == {"unbound": "secure", "bind": "insecure"}


def test_observations_from_raw_results_carry_roles(atlas_campaign: Path) -> None:
    result = runner.invoke(app, ["observations", str(atlas_campaign)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["platform"] == "atlas" for r in rows)
    assert {r["role"] for r in rows} == {
        "valid",
        "bogus-sig",
        "is-ta:20326",
        "not-ta:20326",
        "is-ta:38696",
        "not-ta:38696",
        "whoami",
    }
    as_csv = runner.invoke(app, ["observations", str(atlas_campaign), "-f", "csv"])
    assert len(as_csv.stdout.splitlines()) == len(rows) + 1


def test_role_option_maps_a_measurement(tmp_path: Path) -> None:
    real = ATLAS_RESULTS
    result = runner.invoke(
        app,
        [
            "observations",
            str(real),
            "--role",
            "valid=1004049",
            "--role",
            "bogus-sig=1687652",
        ],
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["role"] for r in rows if r["measurement"] == 1004049} == {"valid"}
    others = [r for r in rows if r["measurement"] not in (1004049, 1687652)]
    # Without a zone only the root DNSKEY query is recognised by its name.
    assert {(r["qname"], r["qtype"]) for r in others if "role" in r} == {
        (".", "DNSKEY")
    }
    bad = runner.invoke(app, ["observations", str(real), "--role", "nonsense=1"])
    assert bad.exit_code == 1


def test_errors_exit_non_zero(tmp_path: Path, atlas_campaign: Path) -> None:
    assert runner.invoke(app, ["classify", str(tmp_path / "missing")]).exit_code == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["classify", str(empty)]).exit_code == 1
    parquet = runner.invoke(app, ["classify", str(atlas_campaign), "-f", "parquet"])
    assert parquet.exit_code == 1
    junk = tmp_path / "junk.jsonl"
    junk.write_text("{oops\n")
    assert runner.invoke(app, ["classify", str(junk)]).exit_code == 1
    assert (
        runner.invoke(app, ["classify", str(atlas_campaign), "--bucket", "0"]).exit_code
        == 1
    )
