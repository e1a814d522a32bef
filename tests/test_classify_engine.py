"""The classifier over observations and raw Atlas results."""

from __future__ import annotations

import io
import random
from datetime import timedelta
from pathlib import Path

from test_classify_helpers import T0, Z, obs, round_of

from rootcanary.classify import Classifier, RoleMap, classify, classify_files
from rootcanary.classify import output as out
from rootcanary.cli.observations import with_roles
from rootcanary.observation import Tally, write_jsonl
from rootcanary.readers.sources import gather, read_observations
from rootcanary.readers.synthetic import write_campaign


def test_states_of_typical_resolvers() -> None:
    rows = [
        *round_of("new", "ksk2024"),
        *round_of("old", "ksk2017"),
        *round_of("vind", "vind"),
        *round_of("open", "nonv"),
        *round_of("broken", "broken"),
        obs("silent", "valid", None),
        obs("silent", "bogus-sig", None),
    ]
    result = classify(rows, keytags=(20326, 38696))
    by_probe = {b.vantage.probe: b for b in result.buckets}
    assert {p: b.validation for p, b in by_probe.items()} == {
        "new": "secure",
        "old": "secure",
        "vind": "secure",
        "open": "insecure",
        "broken": "bogus",
        "silent": "unknown",
    }
    states = {p: tuple(s.state for s in b.trust_anchors) for p, b in by_probe.items()}
    assert states["new"] == ("Vold", "Vnew")
    assert states["old"] == ("Vnew", "Vold")
    assert states["vind"] == ("Vind", "Vind")
    assert states["open"] == ("nonV", "nonV")
    assert states["broken"] == (None, "other")  # SSS for 38696, no 20326 queries
    assert states["silent"] == (None, None)
    assert by_probe["new"].anchor_set.describe() == "holds 38696; not 20326"
    assert by_probe["broken"].flags == ("valid-servfail-ede",)
    evidence = by_probe["new"].evidence
    assert (evidence.ad_valid, evidence.ad_bogus, evidence.ede) == (True, None, (6,))
    assert [e.summary() for e in evidence.responses][-1] == "valid=NOERROR+AD"


def test_servfail_for_another_cause_is_not_validation() -> None:
    rows = [
        obs("p", "valid", "NOERROR"),
        obs("p", "bogus-sig", "SERVFAIL", ede=(22,)),  # no reachable authority
    ]
    (bucket,) = classify(rows).buckets
    assert bucket.validation == "unknown"
    (rows[1:2]) = [obs("p", "bogus-sig", "SERVFAIL", ede=(22, 6))]
    assert classify(rows).buckets[0].validation == "secure"


def test_ad_on_bogus_and_time_buckets() -> None:
    rows = [
        obs("p", "valid", "NOERROR", hour=0.1, ad=True),
        obs("p", "bogus-sig", "NOERROR", hour=0.2, ad=True),
        obs("p", "valid", "NOERROR", hour=1.5, ad=True),
        obs("p", "bogus-sig", "SERVFAIL", hour=1.6),
    ]
    first, second = classify(rows).buckets
    assert (first.start, first.validation, first.flags) == (
        T0,
        "insecure",
        ("ad-on-bogus",),
    )
    assert (second.start, second.validation) == (T0 + timedelta(hours=1), "secure")
    (single,) = classify(rows, bucket_seconds=7200).buckets
    assert single.validation == "secure"
    assert single.flags == (
        "accepts-bogus:sig",
        "ad-on-bogus",
        "inconsistent:bogus-sig",
    )


def test_same_input_in_any_order_gives_the_same_bytes() -> None:
    rows = [
        r
        for hour in range(3)
        for i, kind in enumerate(["ksk2024", "ksk2017", "vind", "nonv", "broken"] * 3)
        for r in round_of(f"p{i}", kind, hour)
    ]
    outputs = set()
    for seed in range(3):
        random.Random(seed).shuffle(rows)
        buffer = io.StringIO()
        out.write_jsonl(classify(rows), buffer)
        outputs.add(buffer.getvalue())
    assert len(outputs) == 1
    assert len(outputs.pop().splitlines()) == 45


def test_role_sources_in_contract_order() -> None:
    roles = RoleMap(
        manifest={"m1": "valid"},
        options={"m1": "bogus-sig", "m2": "bogus-sig"},
        zone=Z,
    )
    classifier = Classifier(roles=roles)
    classifier.add(obs("p", "whoami", "NOERROR", measurement="m1"))  # own role
    classifier.add(obs("p", None, "NOERROR", measurement="m1"))  # manifest
    classifier.add(obs("p", None, "SERVFAIL", measurement="m2"))  # --role
    classifier.add(
        obs("p", None, "SERVFAIL", measurement="m3", qname="1.2.bogus-ds.canary.test.")
    )
    classifier.add(obs("p", None, "NOERROR", measurement="m4", qname="elsewhere."))
    result = classifier.result()
    (bucket,) = result.buckets
    assert [e.role for e in bucket.evidence.responses] == [
        "bogus-ds",
        "bogus-sig",
        "valid",
        "whoami",
    ]
    assert bucket.validation == "secure"
    assert result.unusable == ((next(iter(dict(result.unusable))), 1),)


def test_whoami_maps_a_vantage_point_to_its_upstreams() -> None:
    rows = [
        obs(
            "p",
            "whoami",
            "NOERROR",
            answers=('a.whoami.canary.test. 0 IN TXT "192.0.2.7"',),
        ),
        obs(
            "p",
            "whoami",
            "NOERROR",
            hour=3,
            answers=(
                "b.whoami.canary.test. 0 IN AAAA 2001:db8::0053",
                "x. 0 IN RRSIG A 13 ...",
            ),
        ),
        obs("q", "whoami", "SERVFAIL", answers=()),
    ]
    result = classify(rows)
    upstream = {b.vantage.probe: b.upstream for b in result.buckets}
    assert upstream == {"p": ("192.0.2.7", "2001:db8::53"), "q": ()}


def test_funnel_around_an_event() -> None:
    event = T0 + timedelta(hours=4)
    plans = {
        "steady": ["secure"] * 8,
        "quick": ["secure"] * 4 + ["bogus", "secure", "secure", "secure"],
        "slow": ["secure"] * 4 + ["bogus", "bogus", "insecure", "secure"],
        "slower": ["secure"] * 4 + ["bogus"] * 3 + ["secure"],
        "never": ["secure"] * 4 + ["bogus"] * 4,
        "open": ["insecure"] * 8,
    }
    rows = []
    for probe, states in plans.items():
        for hour, state in enumerate(states):
            rows.append(
                obs(
                    probe,
                    "valid",
                    "NOERROR" if state != "bogus" else "SERVFAIL",
                    hour=hour,
                )
            )
            rows.append(
                obs(
                    probe,
                    "bogus-sig",
                    "SERVFAIL" if state != "insecure" else "NOERROR",
                    hour=hour,
                )
            )
    result = classify(rows, event=event)
    moves = {t.vantage.probe: t for t in result.transitions}
    assert {p: t.funnel for p, t in moves.items()} == {
        "steady": "unaffected",
        "quick": "recovered-within-hour",
        "slow": "recovered-later",
        "slower": "recovered-later",
        "never": "never-recovered",
        "open": "not-secure-before",
    }
    assert moves["slow"].recovery_seconds == 3 * 3600
    assert (moves["never"].before, moves["never"].after) == ("secure", "bogus")
    funnel = result.funnel
    assert funnel is not None
    assert (funnel.vantage_points, funnel.secure_before, funnel.affected) == (6, 5, 4)
    assert (
        funnel.recovered_within_hour,
        funnel.recovered_later,
        funnel.never_recovered,
    ) == (1, 2, 1)
    assert funnel.median_recovery_seconds == 3 * 3600
    phases = {b.phase for b in result.buckets}
    assert phases == {"before", "after"}


def test_atlas_fast_path_equals_the_observation_path(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", probes=40, rounds=3)
    inputs = gather([campaign.directory])
    tally = Tally()
    fast = classify_files(inputs.files, tally, roles=inputs.roles, zone=inputs.zone)
    assert tally.read == campaign.responses and tally.total_skipped == 0
    assert fast.responses == campaign.responses
    # The same responses as observation lines, roles filled in as
    # `rootcanary observations` does (timeouts have no name to go by).
    lines = tmp_path / "obs.jsonl"
    roles = RoleMap(manifest=inputs.roles, zone=inputs.zone)
    with lines.open("w") as handle:
        write_jsonl(with_roles(read_observations(inputs.files, Tally()), roles), handle)
    slow = classify_files([lines], Tally())
    a, b = io.StringIO(), io.StringIO()
    out.write_jsonl(fast, a)
    out.write_jsonl(slow, b)
    assert a.getvalue() == b.getvalue()
    states = {bucket.validation for bucket in fast.buckets}
    assert states <= {"secure", "insecure", "bogus", "unknown"} and "secure" in states
    assert fast.keytags == (20326, 38696)


def test_outputs_are_deterministic_and_parquet_is_typed(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    rows = [r for i, k in enumerate(["ksk2024", "nonv"]) for r in round_of(f"p{i}", k)]
    result = classify(rows, event=T0 + timedelta(hours=1))
    for name in ("a", "b"):
        out.write_parquet(result, tmp_path / f"{name}.parquet")
        with (tmp_path / f"{name}.csv").open("w") as handle:
            out.write_csv(result, handle)
    assert (tmp_path / "a.parquet").read_bytes() == (
        tmp_path / "b.parquet"
    ).read_bytes()
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.column_names == out.flat_columns(result)
    data = table.to_pylist()
    assert [r["validation"] for r in data] == ["secure", "insecure"]
    assert data[0]["ta_38696"] == "Vnew" and data[0]["ede"] == [6]
    header = (tmp_path / "a.csv").read_text().splitlines()[0].split(",")
    assert header[-5:] == ["phase", "before", "after", "funnel", "recovery_s"]


def _atlas_result(
    msm: int, qname: str, rcode: int = 0, ad: bool = False
) -> dict[str, object]:
    import base64

    import dns.flags
    import dns.message

    query = dns.message.make_query(qname, "A", want_dnssec=True)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode.make(rcode))
    if ad:
        response.flags |= dns.flags.AD
    return {
        "type": "dns",
        "msm_id": msm,
        "prb_id": 1234,
        "timestamp": 1791700000,
        "dst_addr": "192.0.2.53",
        "af": 4,
        "result": {"abuf": base64.b64encode(response.to_wire()).decode(), "rt": 1.0},
    }


def test_prefixed_names_map_back_and_shadowed_sentinels_are_flagged(
    tmp_path: Path,
) -> None:
    import json

    import dns.rcode

    prefix = "1234.1791700000."
    results = [
        _atlas_result(1, prefix + "0123456789abcdef.valid.canary.test.", ad=True),
        _atlas_result(2, prefix + "bogus-sig.canary.test.", rcode=dns.rcode.SERVFAIL),
        _atlas_result(
            3, prefix + "root-key-sentinel-is-ta-38696.x.sentinel.canary.test."
        ),
        _atlas_result(4, "www.example.org."),
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    (tmp_path / ".part-1.jsonl").write_text("{torn")  # a writer's temporary
    inputs = gather([tmp_path])
    assert inputs.files == (path,)
    result = classify_files(inputs.files, Tally(), zone=Z)
    (bucket,) = result.buckets
    assert bucket.validation == "secure"
    assert "sentinel-shadowed" in bucket.flags
    assert [e.role for e in bucket.evidence.responses] == [
        "bogus-sig",
        "sentinel-shadowed",
        "valid",
    ]
    assert result.keytags == ()  # a shadowed sentinel measures no key tag
    assert sum(count for _, count in result.unusable) == 1  # www.example.org.
