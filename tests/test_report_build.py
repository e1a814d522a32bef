"""The report's library: replay.json, the query-log pass, share series, build."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_report_helpers import (
    NEW,
    OLD,
    REVOKED,
    ROLES,
    START,
    at,
    iso,
    observations,
    query_log,
    resolvers,
    write_run,
)

from rootcanary.campaign import Manifest, save_manifest
from rootcanary.errors import DataError
from rootcanary.observation import Tally
from rootcanary.readers.synthetic import write_campaign
from rootcanary.report import (
    Report,
    ReportOptions,
    ShareSeries,
    auto_bucket,
    build_report,
    load_replay,
    locate,
    read_query_logs,
    share_series,
)
from rootcanary.report.series import vantage_timeline
from rootcanary.telemetry import telemetry


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("replay") / "run")


@pytest.fixture(scope="module")
def report_of_run(run: Path) -> Report:
    return build_report(run)


# -- replay.json ---------------------------------------------------------------


def test_replay_summary_is_read_field_by_field(run: Path) -> None:
    tally = Tally()
    replay = load_replay(run / "replay.json", tally)
    assert replay is not None and not tally.skipped
    assert replay.scenario_name == "ksk-replay-test"
    assert replay.started == START
    assert replay.finished == at(540)
    assert [p.state for p in replay.phases] == [
        "start",
        "publish",
        "roll",
        "revoke",
        "remove",
    ]
    assert replay.phases[2].at == at(180) and replay.phases[2].offset == 180.0
    assert replay.parameter("probe_interval") == "5.0"
    old, new = replay.key("old"), replay.key("new")
    assert old is not None and (old.tag, old.revoked_tag) == (OLD, REVOKED)
    assert new is not None and (new.slot, new.tag) == ("ksk-next", NEW)
    unbound = next(v for v in replay.verdicts if v.resolver == "unbound")
    assert unbound.trusted_new_at == at(70)
    assert unbound.dropped_revoked_at == at(310)
    assert unbound.first_bogus_at is None and unbound.ok is True
    stale = next(v for v in replay.verdicts if v.resolver == "bind-stale")
    assert (stale.expected, stale.outcome, stale.first_bogus_at) == (
        "breaks",
        "broke",
        at(180),
    )
    assert replay.restarts[0].resolver == "kresd"
    assert {r.phase for r in replay.dnskey_rates} == {
        "publish",
        "roll",
        "revoke",
        "remove",
    }


def test_damaged_replay_items_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "replay.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 2,
                "started": "yesterday",
                "phases": [
                    {"state": "roll", "at": "2026-12-03T18:03:00Z"},
                    {"state": "revoke", "at": "not a time"},
                    "a string",
                ],
                "verdicts": [{"resolver": "", "ok": True}, {"resolver": "x", "ok": 1}],
                "keytag_sets": [
                    {"src": "a", "time": "2026-12-03T18:00:00Z", "tags": [1, "two"]}
                ],
                "dnskey_rates": {"not": "a list"},
            }
        )
    )
    tally = Tally()
    replay = load_replay(path, tally)
    assert replay is not None
    assert [p.state for p in replay.phases] == ["roll"]
    assert replay.started is None and replay.verdicts == () == replay.keytag_sets
    assert tally.skipped == Counter(
        {
            "replay.json: unknown schema_version 2": 1,
            "replay.json: bad started time": 1,
            "replay.json: bad phases item: bad at time": 1,
            "replay.json: bad phases item: not an object": 1,
            "replay.json: bad verdicts item: no resolver": 1,
            "replay.json: bad verdicts item: ok is not true, false or null": 1,
            "replay.json: bad keytag_sets item: a tag is not a number 0..65535": 1,
            "replay.json: dnskey_rates is not a list": 1,
        }
    )
    assert tally.examples["replay.json: bad phases item: bad at time"].endswith(
        "phases[1]"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{torn", "replay.json: not JSON"), ("[1, 2]", "replay.json: not a JSON object")],
)
def test_unreadable_replay_gives_none(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "replay.json"
    path.write_text(content)
    tally = Tally()
    assert load_replay(path, tally) is None
    assert tally.skipped == Counter({reason: 1})


# -- the query log -------------------------------------------------------------


def test_dnskey_queries_are_counted_per_source_and_bucket(run: Path) -> None:
    log = run / "server" / "queries.jsonl"
    expected: Counter[tuple[str, int]] = Counter()
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("qtype") == "DNSKEY" and record.get("qname") == ".":
            moment = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
            expected[(record["src"], int(moment.timestamp()) // 30 * 30)] += 1
    tally = Tally()
    result = read_query_logs([log], tally, 30, (OLD, NEW))
    got = {
        (source, start): count
        for source, counts in zip(
            result.dnskey.sources, result.dnskey.counts, strict=True
        )
        for start, count in counts
    }
    assert got == dict(expected)
    # The stale resolver floods after the roll: it queried most.
    assert result.dnskey.sources[0] == "127.0.1.2"
    assert result.dnskey.totals[0] > 3 * result.dnskey.totals[-1]
    assert tally.skipped == Counter(
        {"bad JSON": 1, "query log line without time and src": 1}
    )
    assert result.lines == tally.read


def test_rfc8145_per_day_matches_the_telemetry_command(run: Path) -> None:
    log = run / "server" / "queries.jsonl"
    mine = read_query_logs([log], Tally(), 10, (OLD, NEW, REVOKED)).per_day
    theirs = telemetry([log], Tally(), (OLD, NEW, REVOKED))
    assert mine == theirs
    # unbound (_ta- names), bind-stale (_ta- names), kresd (EDNS option 14)
    assert [d.any for d in mine.days] == [3]


def test_held_key_tags_follow_each_sources_latest_signal(run: Path) -> None:
    log = run / "server" / "queries.jsonl"
    held = read_query_logs([log], Tally(), 10, (OLD, NEW)).held
    assert held is not None

    def at_offset(offset: float) -> tuple[int, int, int]:
        index = held.starts.index(int(at(offset).timestamp()) // 10 * 10)
        return held.holders[0][index], held.holders[1][index], held.sources[index]

    assert held.starts[0] == int(START.timestamp())  # from the first signal on
    assert at_offset(0) == (3, 0, 3)  # everyone on the old key only
    assert at_offset(60) == (3, 0, 3)  # the add hold-down is not over
    assert at_offset(100) == (3, 2, 3)  # unbound and kresd added the new key
    assert at_offset(400) == (1, 2, 3)  # they dropped the old one; bind did not


def test_query_log_survives_damaged_fields(tmp_path: Path) -> None:
    log = tmp_path / "q.jsonl"
    base = {"time": "2026-12-03T18:00:00.5Z", "src": "127.0.0.9", "qname": ".",
            "qtype": "DNSKEY"}  # fmt: skip
    lines = [
        {**base, "ta": 5, "edns_key_tag": "x"},  # not lists: nothing signalled
        {**base, "ta": [True, 1234]},  # a bool is no key tag
        {**base, "time": "2026-12-03T19:00:00+01:00"},  # an offset, same hour
        {**base, "time": "noon"},
        [1, 2],
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    tally = Tally()
    result = read_query_logs([log], tally, 3600, (1234,))
    assert tally.read == 3
    assert tally.skipped == Counter({"query log line without time and src": 2})
    assert result.dnskey.totals == (3,)
    assert [d.counts for d in result.per_day.days] == [(1,)]


# -- share series ----------------------------------------------------------------


def _column(series: ShareSeries, moment: datetime) -> dict[str, int]:
    index = series.starts.index(moment)
    return {
        state: series.counts[i][index]
        for i, state in enumerate(series.states)
        if series.counts[i][index]
    }


def test_validation_shares_before_and_after_the_roll(report_of_run: Report) -> None:
    result = report_of_run.classification
    assert result.bucket_seconds == 10
    validation = share_series(result, result.keytags)[0]
    assert _column(validation, at(120)) == {"secure": 4, "insecure": 1}
    assert _column(validation, at(300)) == {"secure": 2, "bogus": 2, "insecure": 1}
    index = validation.starts.index(at(300))
    assert validation.shares(0)[index] == pytest.approx(0.4)


def test_trust_anchor_shares_per_key_tag(report_of_run: Report) -> None:
    result = report_of_run.classification
    assert result.keytags == (OLD, NEW)
    _, old, new, sets = share_series(result, result.keytags)
    # Before the hold-down ends nobody trusts the new key; after it the two
    # managed resolvers do (RFC 8509 §3: Vnew), the stale one does not (Vold).
    assert _column(new, at(30)) == {"Vold": 3, "Vind": 1, "nonV": 1}
    assert _column(new, at(120)) == {"Vnew": 2, "Vold": 1, "Vind": 1, "nonV": 1}
    assert _column(old, at(400)) == {"Vold": 2, "nonV": 1, "other": 2}
    assert _column(sets, at(400)) == {f"holds {NEW}; not {OLD}": 2}


def test_buckets_without_data_are_gaps(tmp_path: Path) -> None:
    campaign = tmp_path / "c"
    write_campaign(campaign, probes=5, rounds=3, interval=7200)
    result = build_report(campaign, ReportOptions(bucket_seconds=3600)).classification
    validation = share_series(result, ())[0]
    assert len(validation.starts) == 5  # hours 0..4, hours 1 and 3 empty
    assert [t > 0 for t in validation.totals] == [True, False, True, False, True]
    assert validation.shares(0)[1] is None


def test_vantage_timeline_only_for_few_vantage_points(report_of_run: Report) -> None:
    result = report_of_run.classification
    timeline = vantage_timeline(result, 40)
    assert timeline is not None
    assert timeline.labels[0] == "bind-stale (127.0.1.2)"
    row = timeline.states[timeline.labels.index("pdns-static (127.0.1.4)")]
    assert row[timeline.starts.index(at(100))] == "secure"
    assert row[timeline.starts.index(at(200))] == "bogus"
    assert vantage_timeline(result, 4) is None


# -- building --------------------------------------------------------------------


def test_replay_report_reads_the_run_directory(
    report_of_run: Report, run: Path
) -> None:
    report = report_of_run
    assert report.kind == "replay" and report.name == "ksk-replay-test"
    assert report.data_files == (
        run / "campaign" / "observations" / "local-20261203T180000Z.jsonl",
    )
    assert report.query_log is not None
    assert report.query_log.files == (run / "server" / "queries.jsonl",)
    assert [e.label for e in report.events] == [
        "publish",
        "restart kresd",
        "roll",
        "revoke",
        "remove",
    ]
    assert report.funnel_event is not None and report.funnel_event.label == "roll"
    assert report.rfc8145_keytags == (OLD, NEW, REVOKED)
    assert report.classification.responses == 5 * 108 * len(ROLES)
    counts = {c.noun: c for c in report.inputs}
    assert counts["responses"].total_skipped == 0
    assert counts["query-log lines"].total_skipped == 2


def test_funnel_around_the_roll(report_of_run: Report) -> None:
    funnel = report_of_run.classification.funnel
    assert funnel is not None and funnel.event == at(180)
    assert (funnel.vantage_points, funnel.secure_before, funnel.affected) == (5, 4, 2)
    assert funnel.never_recovered == 2


def test_user_events_replace_the_roll_for_the_funnel(run: Path) -> None:
    moment = at(300)
    report = build_report(
        run, ReportOptions(bucket_seconds=30, events=(moment,), keytags=(NEW,))
    )
    assert report.funnel_event is not None
    assert (report.funnel_event.label, report.funnel_event.time) == ("event", moment)
    assert report.classification.funnel is not None
    assert report.classification.funnel.event == moment
    assert report.classification.keytags == (NEW,)
    assert report.rfc8145_keytags == (NEW,)
    assert "event" in [e.label for e in report.events]


def test_auto_bucket_follows_the_replay(run: Path) -> None:
    replay = load_replay(run / "replay.json", Tally())
    assert auto_bucket(replay) == 10  # 540 s / 120 = 4.5 s, at least 2 rounds
    assert auto_bucket(None) == 3600


def test_running_replay_without_summary(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", with_replay=False)
    layout = locate(run)
    assert layout.kind == "replay" and layout.replay_file is None
    report = build_report(run)
    assert report.replay is None and report.funnel_event is None
    assert report.classification.responses > 0


def test_atlas_campaign_report(tmp_path: Path) -> None:
    campaign = tmp_path / "atlas"
    write_campaign(campaign, probes=20, rounds=4)
    event = datetime(2026, 10, 11, 2, 0, tzinfo=UTC)
    report = build_report(campaign, ReportOptions(events=(event,)))
    assert report.kind == "atlas" and report.campaign is not None
    assert report.replay is None and report.query_log is None
    assert report.classification.bucket_seconds == 3600
    assert report.classification.funnel is not None
    assert report.rfc8145_keytags == (20326, 38696)


def test_campaign_with_a_query_log_inside(tmp_path: Path) -> None:
    campaign = tmp_path / "local"
    campaign.mkdir()
    crew = resolvers()[:1]
    (campaign / "observations").mkdir()
    with (campaign / "observations" / "o.jsonl").open("w") as out:
        for record in observations(crew[0], duration=60):
            out.write(json.dumps(record) + "\n")
    save_manifest(
        campaign,
        Manifest(
            name="l",
            backend="local",
            created=iso(START),
            extra={"zone": "canary.test."},
        ),
    )
    (campaign / "queries.jsonl").write_text(
        "".join(line + "\n" for _, line in query_log(crew, duration=60))
    )
    report = build_report(campaign)
    assert report.kind == "local"
    assert report.query_log is not None and report.query_log.dnskey.queries == 3


def test_proxy_manifest_names_its_query_log(tmp_path: Path) -> None:
    campaign = tmp_path / "proxy"
    (campaign / "observations").mkdir(parents=True)
    (campaign / "observations" / "o.jsonl").write_text("")
    log = tmp_path / "elsewhere.jsonl"
    log.write_text(
        json.dumps(
            {"time": iso(START), "src": "192.0.2.7", "qname": ".", "qtype": "DNSKEY"}
        )
        + "\n"
    )
    save_manifest(
        campaign,
        Manifest(
            name="p",
            backend="proxy",
            created=iso(START),
            extra={"proxy": {"query_log": str(log)}},
        ),
    )
    report = build_report(campaign)
    assert report.query_log is not None and report.query_log.files == (log,)


def test_folder_of_observation_files(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    with (folder / "o.jsonl").open("w") as out:
        for record in observations(resolvers()[0], duration=30):
            out.write(json.dumps(record) + "\n")
    report = build_report(folder, ReportOptions(bucket_seconds=10))
    assert report.kind == "files" and report.campaign is None
    assert len(report.classification.vantage_points) == 1


def test_nothing_to_report(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing to report"):
        build_report(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        build_report(tmp_path / "missing")


def test_bucket_edges_are_aligned_to_the_epoch(report_of_run: Report) -> None:
    starts = {b.start for b in report_of_run.classification.buckets}
    assert min(starts) == START and max(starts) == START + timedelta(seconds=530)


def test_reads_what_the_replay_driver_writes(tmp_path: Path, run: Path) -> None:
    """The contract: rootcanary.replay.write_summary -> load_replay."""
    from rootcanary.replay import KeyInfo, ReplayResult, ReplayVerdict, write_summary
    from rootcanary.scenario import load_scenario

    scenario_file = tmp_path / "short.toml"
    scenario_file.write_text(
        """name = "contract"
[server]
listen = ["127.0.9.1:53"]
[[zone]]
apex = "."
nameservers = [{ name = "a.root-servers.net.", addresses = ["127.0.9.1"] }]
[[zone]]
apex = "canary.test."
test_names = true
nameservers = [{ name = "ns1.canary.test.", addresses = ["127.0.9.1"] }]
[testbed]
server = "127.0.9.1"
holddown = "20s"
[[testbed.resolver]]
name = "unbound"
implementation = "unbound"
variant = "validating"
address = "127.0.9.11"
[rollover]
probe_interval = "3s"
[[rollover.phase]]
state = "publish"
at = "0s"
[[rollover.phase]]
state = "roll"
at = "40s"
"""
    )
    scenario = load_scenario(scenario_file)
    verdict = ReplayVerdict(
        resolver="unbound",
        implementation="unbound",
        variant="validating",
        address="127.0.9.11",
        expected="survives",
        outcome="survived",
        trusted_new_at=at(25),
        secure_through_roll=True,
        first_bogus_at=None,
        dropped_revoked_at=None,
        notes="an RFC 5011-managed anchor follows the roll",
    )
    result = ReplayResult(
        run_dir=tmp_path,
        started=START,
        finished=at(60),
        phases=[("start", START), ("publish", at(0.5)), ("roll", at(40))],
        verdicts=[verdict],
        keys={
            "old": KeyInfo("ksk", OLD, REVOKED),
            "new": KeyInfo("ksk-next", NEW, 5806),
        },
        restarts=[("unbound", at(10))],
    )
    path = write_summary(result, scenario, run / "server" / "queries.jsonl")
    tally = Tally()
    replay = load_replay(path, tally)
    assert replay is not None and not tally.skipped
    assert replay.scenario_name == "contract" and replay.scenario_text
    assert (replay.started, replay.finished) == (START, at(60))
    assert [(p.state, p.at) for p in replay.phases][1:] == [
        ("publish", at(0.5)),
        ("roll", at(40)),
    ]
    assert replay.parameter("holddown") == "20.0"
    new = replay.key("new")
    assert new is not None and new.tag == NEW
    (mine,) = replay.verdicts
    assert (mine.ok, mine.trusted_new_at, mine.dropped_revoked_at) == (
        True,
        at(25),
        None,
    )
    assert replay.restarts[0].at == at(10)
    assert replay.keytag_sets and replay.dnskey_rates
    assert {r.phase for r in replay.dnskey_rates} <= {"start", "publish", "roll"}
