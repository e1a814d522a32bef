"""The pure parts of the Atlas backend: scenario section, probe split, bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from atlas_fixtures import scenario
from atlas_standin import make_probes

from rootcanary.backends.atlas.client import cousteau_create_request, naive_utc
from rootcanary.backends.atlas.definitions import (
    build_plan,
    estimate,
    parse_slot,
    subset_body,
)
from rootcanary.backends.atlas.fetch import stored_digests, windows
from rootcanary.backends.atlas.probes import (
    load_probe_file,
    needs_probe_list,
    split_with_list,
    split_without_list,
)
from rootcanary.backends.atlas.schedule import planned_tests, zone_problem
from rootcanary.backends.atlas.store import parts, remove_stale_temporaries, write_part
from rootcanary.errors import ConfigError, DataError, ScenarioError
from rootcanary.scenario import load_scenario
from rootcanary.scenario.atlas import ProbeSelection

NOW = 1_800_000_000


def _load(tmp_path: Path, **kwargs: str) -> object:
    return load_scenario(scenario(tmp_path, **kwargs))


@pytest.mark.parametrize(
    ("atlas", "probes", "message"),
    [
        ('interval = "1h"', None, "a periodic campaign needs stop or duration"),
        ('oneoff = true\ninterval = "1h"', None, "either interval or oneoff"),
        ('interval = "1h"\nduration = "1d"\nspread = "500s"', None, "at most 400s"),
        ('oneoff = true\nlabel = "$p"', None, "must contain $r"),
        ('oneoff = true\nlabel = "x_$r"', None, "use lower-case letters"),
        ("oneoff = true\nbuffer_size = 256", None, "must be at least 512"),
        ("oneoff = true\naf = [4, 5]", None, "expected 4, 6 or [4, 6]"),
        ('oneoff = true\ntags = ["Bad Tag"]', None, "tags are lower-case"),
        ('oneoff = true\nstart = "2026-12-10T00:00:00"', None, "give a time zone"),
        (
            "oneoff = true",
            "[[atlas.probes]]\ncountry = 'nl'\nrequested = 5",
            "ISO 3166",
        ),
        ("oneoff = true", "[[atlas.probes]]\nall = true\nasn = 3", "exactly one of"),
        ("oneoff = true", "[[atlas.probes]]\nall = true", "requested: required"),
        ("oneoff = true", "[[atlas.probes]]\nids = [1, 1]", "distinct probe ids"),
        ("oneoff = true", "[[atlas.probes]]\nids = [1]\nrequested = 2", "only 1 ids"),
        ("oneoff = true", "", "at least one [[atlas.probes]]"),
    ],
)
def test_atlas_section_errors_name_the_key(
    tmp_path: Path, atlas: str, probes: str | None, message: str
) -> None:
    kwargs = {"atlas": atlas}
    if probes is not None:
        kwargs["probes"] = probes
    with pytest.raises(ScenarioError) as info:
        _load(tmp_path, **kwargs)
    assert message in str(info.value)
    assert "scenario.toml: atlas" in str(info.value)


def test_times_with_offsets_are_converted_exactly(tmp_path: Path) -> None:
    loaded = load_scenario(
        scenario(
            tmp_path,
            atlas='interval = "1h"\nstart = "2023-11-15T01:00:00+01:00"\n'
            'stop = "2023-11-16T00:00:00Z"',
        )
    )
    assert loaded.atlas is not None
    # cousteau would turn the aware +01:00 time into 1700010000 (atlas.md §3).
    assert loaded.atlas.start == 1700006400
    assert loaded.atlas.stop == 1700092800
    assert loaded.atlas.effective_spread == 400


def test_the_shipped_scenarios_plan_what_the_issue_asks(repo: Path) -> None:
    ksk = load_scenario(repo / "scenarios" / "ksk-2024.toml")
    assert ksk.atlas is not None and ksk.tests is not None
    roles = [t.role for t in planned_tests(ksk)]
    assert roles == [
        "valid",
        "bogus-sig",
        "is-ta:20326",
        "not-ta:20326",
        "is-ta:38696",
        "not-ta:38696",
        "whoami",
        "dnskey",
    ]
    assert ksk.atlas.interval == 3600
    (selection,) = ksk.atlas.probes
    assert selection.kind == "all" and selection.requested is None
    assert needs_probe_list(ksk.atlas.probes, ksk.atlas.limits.max_probes)
    assert zone_problem(ksk.tests.zone) is not None  # the obvious placeholder

    canary = load_scenario(repo / "scenarios" / "root-canary.toml")
    assert canary.atlas is not None
    roles = [t.role for t in planned_tests(canary)]
    assert "alg:d2a13n1:valid" in roles and "alg:d2a13n1:bogus-sig" in roles
    assert len([r for r in roles if r.startswith("alg:")]) == 28


def test_bodies_match_what_cousteau_sends(tmp_path: Path) -> None:
    loaded = load_scenario(
        scenario(
            tmp_path,
            atlas='interval = "2h"\nstart = 1800000600\nduration = "2d"\n'
            'bill_to = "someone@example.org"\n[atlas.override.dnskey]\n'
            'buffer_size = 4096\nprotocol = "TCP"',
        )
    )
    assert loaded.atlas is not None
    split = split_without_list(loaded.atlas.probes, 1000)
    plan = build_plan(
        "t", loaded.atlas, planned_tests(loaded), split.requests, "rc-t-1", NOW
    )
    (body,) = plan.bodies
    assert body["start_time"] == 1800000600
    assert body["stop_time"] == 1800000600 + 2 * 86400
    assert body["bill_to"] == "someone@example.org"
    dnskey = body["definitions"][4]
    assert dnskey["udp_payload_size"] == 4096 and dnskey["protocol"] == "TCP"
    assert body["definitions"][0]["interval"] == 7200
    assert body["definitions"][0]["spread"] == 400
    request = cousteau_create_request(body, key="k", server="127.0.0.1:1")
    assert request.post_data == body
    assert naive_utc(1700006400).isoformat() == "2023-11-15T00:00:00"

    # 3 probes x 12 runs a day x (4 UDP x 10 + 1 TCP x 20) credits
    est = estimate(plan.bodies, loaded.atlas, NOW)
    assert est.results_per_day == 3 * 12 * 5
    assert est.credits_per_day == 3 * 12 * (4 * 10 + 20)
    assert est.days == 2 and est.credits_total == 2 * est.credits_per_day


def test_slots_are_read_back_only_for_the_campaign_tag() -> None:
    assert parse_slot("rootcanary x: valid af4 [rc-x-1a2b3c/17]", "rc-x-1a2b3c") == 17
    assert parse_slot("rootcanary x: valid af4 [rc-x-1a2b3c/17]", "rc-x-000000") is None
    assert parse_slot("someone else's measurement", "rc-x-1a2b3c") is None


def test_explicit_ids_are_split_into_disjoint_chunks() -> None:
    selections = (
        ProbeSelection("ids", tuple(range(1, 26)), None),
        ProbeSelection("ids", (30, 31, 1), None),
    )
    assert not needs_probe_list(selections, 10)
    split = split_without_list(selections, 10)
    values = [r[0]["value"].split(",") for r in split.requests]
    assert [len(v) for v in values] == [10, 10, 7]
    flat = [int(i) for v in values for i in v]
    assert sorted(flat) == sorted(set(range(1, 26)) | {30, 31})


def test_selections_over_the_limit_are_resolved_against_the_probe_list(
    tmp_path: Path,
) -> None:
    catalogue = make_probes(40)
    nl = ProbeSelection(
        "country", "NL", None, ("system-ipv4-works",), ("system-anchor",)
    )
    de = ProbeSelection("country", "DE", 4)
    assert needs_probe_list((nl, de), 1000)
    split = split_with_list((nl, de), catalogue, 3)
    ids = [int(i) for r in split.requests for i in r[0]["value"].split(",")]
    connected_nl = [
        p["id"]
        for p in catalogue
        if p["country_code"] == "NL"
        and p["status"]["id"] == 1
        and "system-anchor" not in {t["slug"] for t in p["tags"]}
    ]
    de_ids = [
        p["id"]
        for p in catalogue
        if p["country_code"] == "DE" and p["status"]["id"] == 1
    ]
    assert set(connected_nl) <= set(ids)
    assert len(set(ids) & set(de_ids)) == 4
    assert len(ids) == len(set(ids)) == len(connected_nl) + 4
    assert all(r[0]["requested"] <= 3 for r in split.requests)
    # The same list gives the same choice.
    again = split_with_list((nl, de), catalogue, 3)
    assert again.requests == split.requests

    dump = tmp_path / "probes.json"
    dump.write_text('{"objects": ' + __import__("json").dumps(catalogue) + "}")
    assert load_probe_file(dump) == catalogue

    with pytest.raises(ConfigError, match="cannot tell which probes"):
        split_with_list((ProbeSelection("area", "West", None),), catalogue, 3)


def test_subset_bodies_keep_the_probes_of_their_request() -> None:
    body = {
        "definitions": [{"n": 0}, {"n": 1}, {"n": 2}],
        "probes": [{"type": "area", "value": "WW", "requested": 50}],
        "is_oneoff": True,
    }
    sub = subset_body(body, [1, 2], same_probes_as=4242)
    assert sub["definitions"] == [{"n": 1}, {"n": 2}]
    assert sub["probes"] == [{"type": "msm", "value": 4242, "requested": 50}]
    explicit = {**body, "probes": [{"type": "probes", "value": "1,2", "requested": 2}]}
    assert subset_body(explicit, [0], 4242)["probes"] == explicit["probes"]


def test_fetch_windows_cover_the_span_and_end_open() -> None:
    spans = windows(7, 100, 400, 100)
    assert [(w.start, w.stop) for w in spans] == [
        (100, 199),
        (200, 299),
        (300, 399),
        (400, None),
    ]


def test_parts_are_atomic_and_temporaries_are_not_parts(tmp_path: Path) -> None:
    part = write_part(tmp_path, 1, [{"timestamp": 5}, {"timestamp": 9}, {"x": 1}])
    assert (part.first, part.last, part.count) == (5, 9, 3)
    (tmp_path / ".part-abc.tmp").write_bytes(b"half a part")
    assert [p.seq for p in parts(tmp_path)] == [1]
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == [part.path.name]


def test_a_damaged_part_is_reported_not_repeated(tmp_path: Path) -> None:
    write_part(tmp_path, 1, [{"timestamp": 5}])
    damaged = tmp_path / "part-000002-6-9-n2.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b not really gzip")
    # Parts that end before the start are not read at all...
    digests, following = stored_digests(tmp_path, 10)
    assert digests == set() and following == 3
    # ...a damaged one that must be read stops the fetch, naming the file.
    with pytest.raises(DataError, match=r"part-000002-6-9-n2\.jsonl\.gz: unreadable"):
        stored_digests(tmp_path, 7)
    damaged.unlink()
    digests, following = stored_digests(tmp_path, 0)
    assert len(digests) == 1 and following == 2
