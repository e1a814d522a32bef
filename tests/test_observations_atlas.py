"""RIPE Atlas results to observations, on the real results in shared/data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from shared_data import ATLAS_RESULTS

from rootcanary.observation import Observation, Tally
from rootcanary.readers import atlas
from rootcanary.readers.sources import gather, read_observations

REAL = ATLAS_RESULTS


def _real_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in REAL.read_text().splitlines()]


def _read(path: Path) -> tuple[list[Observation], Tally]:
    tally = Tally()
    return list(read_observations([path], tally)), tally


def test_every_real_result_reads_without_a_skip() -> None:
    observations, tally = _read(REAL)
    lines = _real_lines()
    expected = sum(len(r.get("resultset") or [r]) for r in lines)
    assert tally.total_skipped == 0
    assert tally.read == len(observations) == expected
    assert {o.platform for o in observations} == {"atlas"}


def test_resultset_gives_one_observation_per_resolver_with_ad() -> None:
    observations, _ = _read(REAL)
    rows = [o for o in observations if o.measurement == 1004049]
    assert [(o.probe, o.resolver, o.rcode, o.ad) for o in rows] == [
        (13337, "192.168.1.1", "NOERROR", False),
        (13337, "109.69.8.34", "NOERROR", False),
        (13337, "8.8.8.8", "NOERROR", True),
    ]
    assert all(o.qname == "www.ripe.net." and o.qtype == "A" for o in rows)
    assert rows[2].answers[0].startswith("www.ripe.net. ")
    assert " IN A " in rows[2].answers[0]


def test_timeouts_inside_a_resultset_are_failed_attempts() -> None:
    observations, _ = _read(REAL)
    rows = [o for o in observations if o.measurement == 1687652]
    assert [o.rcode for o in rows] == ["NOERROR", "NOERROR", None]
    assert rows[2].resolver == "2001:4860:4860::8888"
    assert rows[2].error == "timeout: 5000"
    assert rows[2].ad is None


def test_top_level_error_and_missing_abuf() -> None:
    observations, _ = _read(REAL)
    timeout = next(o for o in observations if o.measurement == 1666006)
    assert (timeout.rcode, timeout.error) == (None, "timeout: 5000")
    assert timeout.resolver == "194.0.25.16"
    # TCP resultset made with prepend_probe_id, without abuf: the qname comes
    # from the query buffer, the failure says why there is no rcode.
    rows = [o for o in observations if o.measurement == 1666151]
    assert [o.qname for o in rows] == [
        "15112.1400665523.www.twitter.com.",
        "15112.1400665524.www.twitter.com.",
    ]
    assert all(o.rcode is None and o.error == atlas.NO_ABUF for o in rows)


def test_other_rcodes_and_no_question() -> None:
    observations, _ = _read(REAL)
    rcodes = {o.rcode for o in observations}
    assert {"REFUSED", "NXDOMAIN", "NOTIMP", None} <= rcodes
    notimp = next(o for o in observations if o.rcode == "NOTIMP")
    assert (notimp.qname, notimp.qtype) == ("", "")


def test_json_array_and_gzip_read_the_same(tmp_path: Path) -> None:
    lines = _real_lines()
    array = tmp_path / "results.json"
    array.write_text(json.dumps(lines, indent=1))
    packed = tmp_path / "results.jsonl.gz"
    packed.write_bytes(gzip.compress(REAL.read_bytes()))
    plain, _ = _read(REAL)
    for path in (array, packed):
        again, tally = _read(path)
        assert tally.total_skipped == 0
        assert [o.to_json() for o in again] == [o.to_json() for o in plain]


def test_truncated_gzip_and_torn_line_are_counted(tmp_path: Path) -> None:
    data = gzip.compress(REAL.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    observations, tally = _read(cut)
    assert observations  # what came before the cut is kept
    assert tally.skipped["truncated gzip stream"] == 1
    assert tally.skipped["torn last line"] == 1
    torn = tmp_path / "torn.jsonl"
    torn.write_text(REAL.read_text() + '{"msm_id": 1, "prb_id": 2, "resu')
    observations, tally = _read(torn)
    assert len(observations) == _read(REAL)[1].read
    assert dict(tally.skipped) == {"torn last line": 1}
    assert f"{torn}:57" in tally.examples["torn last line"]


def test_bad_input_is_counted_by_reason(tmp_path: Path) -> None:
    good = REAL.read_text().splitlines()[3]  # a resultset of three
    bad_abuf = json.loads(REAL.read_text().splitlines()[12])
    bad_abuf["result"]["abuf"] = "!!not base64!!"
    short = json.loads(REAL.read_text().splitlines()[12])
    short["result"]["abuf"] = short["result"]["abuf"][:24]
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                json.dumps({"type": "ping", "msm_id": 1, "prb_id": 2}),
                json.dumps({"hello": "world"}),
                json.dumps(bad_abuf),
                json.dumps(short),
                json.dumps({"msm_id": 5, "prb_id": 6, "resultset": [{"x": 1}]}),
                "",
            ]
        )
    )
    observations, tally = _read(path)
    assert len(observations) == 3
    assert tally.skipped == {
        "bad JSON": 1,
        atlas.NOT_DNS: 1,
        "neither an observation nor a DNS result": 1,
        atlas.BAD_ABUF: 2,
        atlas.BAD_TIME: 1,
    }


def test_campaign_directory_reads_results_recursively(tmp_path: Path) -> None:
    from rootcanary.campaign import Manifest, now_iso, save_manifest

    nested = tmp_path / "camp" / "results" / "2026" / "10"
    nested.mkdir(parents=True)
    (nested / "1004049.jsonl").write_text(REAL.read_text().splitlines()[3] + "\n")
    (tmp_path / "camp" / "notes.txt").write_text("not data")
    save_manifest(
        tmp_path / "camp",
        Manifest(
            name="camp",
            backend="atlas",
            created=now_iso(),
            roles={"1004049": "valid"},
            extra={"zone": "canary.test"},
        ),
    )
    inputs = gather([tmp_path / "camp"])
    assert inputs.files == (nested / "1004049.jsonl",)
    assert inputs.roles == {"1004049": "valid"}
    assert inputs.zone == "canary.test."


@pytest.mark.parametrize("index", range(56))
def test_entries_agree_with_the_observations(index: int) -> None:
    """The inlined classifier loop and the reader see the same attempts."""
    from rootcanary.classify.engine import Classifier

    line = _real_lines()[index]
    tally_a, tally_b = Tally(), Tally()
    entries = list(atlas.entries(line, (REAL, index + 1, -1), tally_a))
    classifier = Classifier(roles={str(line["msm_id"]): "valid"})
    classifier.add_atlas(line, (REAL, index + 1, -1), tally_b)
    assert classifier.responses == len(entries) == tally_b.read
    assert tally_a.skipped == tally_b.skipped
