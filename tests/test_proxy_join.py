"""The join of prober, DNS and HTTP logs, on hand-made logs of known content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rootcanary.backends import proxy_outcome as po
from rootcanary.backends.proxy import JoinSources, RequestRecord, describe
from rootcanary.backends.proxy_join import join_campaign
from rootcanary.campaign import Manifest, load_manifest, save_manifest
from rootcanary.cli import app
from rootcanary.observation import Tally
from rootcanary.readers.sources import read_observations
from rootcanary.scenario.proxy import ProxySpec
from tests.proxy_util import stderr_capture

ZONE = "canary.test."
PROVIDER = "192.0.2.53"  # the gateway's pre-check resolver
EXIT_RESOLVER = "198.51.100.1"
EXIT_IP = "203.0.113.9"
T0 = "2026-12-03T17:00:00.000000Z"


def name(role: str, label: str) -> str:
    if role == "valid":
        return f"{label}.valid.{ZONE}"
    if role.startswith("bogus-"):
        return f"{label}.{role}.{ZONE}"
    kind, tag = role.split(":")
    return f"root-key-sentinel-{kind}-{int(tag):05d}.{label}.sentinel.{ZONE}"


def record(
    label: str,
    role: str,
    outcome: str,
    status: int | None,
    *,
    session: str = "s1",
    headers: dict[str, str] | None = None,
    code: str | None = None,
    exit_id: str | None = "r" + "a" * 32,
    final: bool = True,
    index: int = 0,
) -> str:
    qname = name(role, label)
    return RequestRecord(
        index=index,
        session=session,
        label=label,
        role=role,
        qname=qname,
        qtype="A",
        url=f"http://{qname.rstrip('.')}/",
        country=None,
        asn=None,
        attempt=1,
        final=final,
        started=T0,
        elapsed_ms=5.0,
        status=status,
        headers=headers or {},
        exit_id=exit_id,
        error_code=code,
        error=None,
        exception=None,
        outcome=outcome,
        body_bytes=0,
    ).to_json()


def query(qname: str, src: str, rcode: str = "NOERROR", qtype: str = "A") -> str:
    return json.dumps(
        {
            "time": T0,
            "transport": "udp",
            "src": src,
            "sport": 5353,
            "dst": "192.0.2.1",
            "dport": 53,
            "id": 1,
            "qname": qname,
            "qtype": qtype,
            "qclass": "IN",
            "opcode": "QUERY",
            "rd": False,
            "cd": False,
            "edns": 0,
            "bufsize": 1232,
            "do": True,
            "opts": [],
            "edns_key_tag": None,
            "ta": None,
            "rcode": rcode,
            "size": 100,
            "tc": False,
            "zone": ZONE,
        }
    )


def hit(host: str, src: str = EXIT_IP) -> str:
    return json.dumps(
        {"time": T0, "src": src, "sport": 1, "dst": "192.0.2.80", "dport": 80,
         "host": host, "method": "GET", "path": "/", "user_agent": "x",
         "via": "1.1 exit (squid/5.7)", "x_forwarded_for": None, "status": 200}
    )  # fmt: skip


def campaign(
    tmp_path: Path, requests: list[str], queries: list[str], hits: list[str]
) -> Path:
    directory = tmp_path / "c"
    (directory / "proxy").mkdir(parents=True)
    (directory / "proxy" / "requests-1.jsonl").write_text("\n".join(requests) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (tmp_path / "http.jsonl").write_text("\n".join(hits) + "\n")
    return directory


def join(directory: Path, tmp_path: Path) -> tuple[Any, dict[tuple[str, str], Any]]:
    result = join_campaign(
        directory,
        zone=ZONE,
        query_logs=[tmp_path / "queries.jsonl"],
        http_logs=[tmp_path / "http.jsonl"],
        provider_resolvers=["192.0.2.0/25"],
    )
    tally = Tally()
    observations = list(read_observations([result.file], tally))
    assert tally.total_skipped == 0
    return result, {(o.extra["label"], o.role): o for o in observations}


def test_each_rule_of_the_rcode_table(tmp_path: Path) -> None:
    L, M = "a1b2c3d4e5f6", "0123456789ab"  # M: no exit resolver ever seen
    brd = {"x-brd-err-code": "target_40001"}
    gate = {"headers": brd, "code": "target_40001"}
    requests = [
        record(L, "valid", po.OK, 200),
        record(L, "bogus-sig", po.DNS_ERROR, 502, **gate),
        record(L, "is-ta:20326", po.DNS_ERROR, 502, **gate),
        record(L, "not-ta:20326", po.DNS_ERROR, 502, code="ERR_READ_ERROR"),
        record(L, "bogus-expired", po.OK, 200),
        record(L, "bogus-nosig", po.OK, 200),
        record(L, "bogus-future", po.DNS_ERROR, 502),
        record(L, "bogus-ds", po.TIMEOUT, None),
        record(M, "valid", po.OK, 200, session="s2", index=1),
        record(M, "bogus-sig", po.DNS_ERROR, 502, session="s2", index=1),
        record(M, "bogus-ds", po.DNS_ERROR, 502, session="s2", index=1),
    ]
    upper = name("valid", L).upper()  # 0x20-style case from the resolver
    queries = [
        query(name("valid", L), PROVIDER),
        query(upper, EXIT_RESOLVER),
        query(name("bogus-sig", L), PROVIDER),
        query(name("bogus-sig", L), EXIT_RESOLVER),
        query(name("is-ta:20326", L), PROVIDER),  # the gateway's own lookup
        query(name("bogus-expired", L), PROVIDER),  # fetched, exit resolver cached
        query(name("bogus-future", L), EXIT_RESOLVER, rcode="NXDOMAIN"),
        query(name("bogus-ds", L), EXIT_RESOLVER),
        query(name("valid", M), PROVIDER),
        query(name("bogus-sig", M), PROVIDER),
    ]
    hits = [
        hit(name("valid", L).rstrip(".").upper() + ":80"),
        hit(name("bogus-expired", L).rstrip(".")),
        hit(name("valid", M).rstrip(".")),
    ]
    result, obs = join(campaign(tmp_path, requests, queries, hits), tmp_path)
    assert result.observations == 11 and not result.unjoinable
    rcodes = {key: (o.rcode, o.extra["basis"]) for key, o in obs.items()}
    assert rcodes == {
        (L, "valid"): ("NOERROR", "fetched"),
        (L, "bogus-sig"): ("SERVFAIL", "dns-error-exit-resolver"),
        (L, "is-ta:20326"): (None, "dns-error-gateway"),
        # RFC 8198: the session's resolver answered from its cache.
        (L, "not-ta:20326"): ("SERVFAIL", "dns-error-resolver-cache"),
        (L, "bogus-expired"): ("NOERROR", "fetched-resolver-cache"),
        (L, "bogus-nosig"): (None, "answered-elsewhere"),
        (L, "bogus-future"): ("NXDOMAIN", "dns-error-exit-resolver"),
        (L, "bogus-ds"): (None, po.TIMEOUT),
        (M, "valid"): (None, "fetched-provider-dns"),
        (M, "bogus-sig"): (None, "dns-error-provider-only"),
        (M, "bogus-ds"): (None, "dns-error-no-query"),
    }
    valid = obs[(L, "valid")]
    # The vantage point: the exit the web server saw, its resolver (never the
    # provider's, even though the provider asked first).
    assert {(o.probe, o.resolver, o.af) for k, o in obs.items() if k[0] == L} == {
        (EXIT_IP, EXIT_RESOLVER, 4)
    }
    assert {(o.probe, o.resolver) for k, o in obs.items() if k[0] == M} == {
        (EXIT_IP, None)
    }
    assert valid.answers == ("192.0.2.80",)
    assert obs[(L, "bogus-sig")].extra["provider_asked"] == [PROVIDER]
    assert obs[(L, "bogus-sig")].extra["asked_by"] == [EXIT_RESOLVER]
    assert "inconclusive" in (obs[(L, "is-ta:20326")].error or "")
    assert "target_40001" in (obs[(L, "is-ta:20326")].error or "")
    assert obs[(L, "valid")].platform == "proxy" and valid.measurement == "valid"


def test_proxy_status_dns_error_names_the_rcode(tmp_path: Path) -> None:
    L = "0f0f0f0f0f0f"
    status = 'exit.example; error=dns_error; rcode="REFUSED"; info-code=18'
    requests = [
        record(L, "valid", po.DNS_ERROR, 502, headers={"proxy-status": status}),
    ]
    queries = [query(name("valid", L), EXIT_RESOLVER)]
    _, obs = join(campaign(tmp_path, requests, queries, []), tmp_path)
    observation = obs[(L, "valid")]
    assert (observation.rcode, observation.ede) == ("REFUSED", (18,))
    # Nothing fetched: the exit id header stands in for the web-log address.
    assert observation.probe == "r" + "a" * 32


def test_exit_ids_map_to_the_address_seen_elsewhere(tmp_path: Path) -> None:
    seen, blind = "111111111111", "222222222222"
    requests = [
        record(seen, "valid", po.OK, 200, session="s1", exit_id="rX"),
        record(blind, "valid", po.DNS_ERROR, 502, session="s2", exit_id="rX", index=1),
    ]
    queries = [
        query(name("valid", seen), EXIT_RESOLVER),
        query(name("valid", blind), EXIT_RESOLVER),
    ]
    hits = [hit(name("valid", seen).rstrip("."), src="203.0.113.77")]
    _, obs = join(campaign(tmp_path, requests, queries, hits), tmp_path)
    assert obs[(blind, "valid")].probe == "203.0.113.77"
    assert obs[(blind, "valid")].rcode == "SERVFAIL"


def test_unjoinable_and_malformed_input_is_counted(tmp_path: Path) -> None:
    L, dead = "abcabcabcabc", "deaddeaddead"
    requests = [
        record(L, "valid", po.OK, 200),
        record(L, "valid", po.PROVIDER_ERROR, 429, final=False),
        record(
            dead,
            "valid",
            po.AUTH_FAILED,
            407,
            session="s9",
            code="client_10000",
            exit_id=None,
        ),
        record(dead, "bogus-sig", po.SKIPPED, None, session="s9", exit_id=None),
        "{not json",
        json.dumps({"schema": 1, "label": 5}),
        json.dumps({"schema": 99}),
    ]
    queries = [
        query(name("valid", L), EXIT_RESOLVER),
        query(name("valid", "ffffffffffff"), EXIT_RESOLVER),  # not ours
        query("_ta-4f66.", EXIT_RESOLVER, qtype="NULL"),
        json.dumps({"time": T0, "src": "192.0.2.9", "qname": None, "drop": "short"}),
        json.dumps({"qname": 5}),
        "[]",
    ]
    hits = [hit(name("valid", L).rstrip(".")), hit("www.example.com"), "garbage"]
    result, obs = join(campaign(tmp_path, requests, queries, hits), tmp_path)
    assert list(obs) == [(L, "valid")]
    assert result.unjoinable == {"no exit identified (auth_failed 407 client_10000)": 2}
    assert result.requests.read == 4 and result.requests.total_skipped == 3
    assert result.queries.read == 4 and result.queries.total_skipped == 2
    assert result.hits.read == 2 and result.hits.total_skipped == 1
    assert result.ignored["request attempts retried"] == 1
    assert result.ignored["queries for labels not in this campaign"] == 1
    assert result.ignored[f"queries for names without a label under {ZONE}"] == 1


def test_fetch_command_joins_and_records_in_manifest(tmp_path: Path) -> None:
    L = "c0ffeec0ffee"
    directory = campaign(
        tmp_path,
        [record(L, "valid", po.OK, 200)],
        [query(name("valid", L), EXIT_RESOLVER)],
        [hit(name("valid", L).rstrip("."))],
    )
    spec = ProxySpec(gateway="http://127.0.40.2:1", provider_resolvers=(PROVIDER,))
    manifest = Manifest("c", "proxy", T0, extra={"zone": ZONE})
    manifest.extra["proxy"] = describe(
        spec, JoinSources(tmp_path / "queries.jsonl", tmp_path / "http.jsonl")
    )
    save_manifest(directory, manifest)
    with stderr_capture() as err:
        result = CliRunner().invoke(app, ["fetch", str(directory)])
    assert result.exit_code == 0, err.getvalue()
    assert "1 sessions, 1 observations (1 NOERROR)" in err.getvalue()
    assert load_manifest(directory).extra["join"]["observations"] == 1
    line = json.loads((directory / "observations" / "proxy.jsonl").read_text())
    assert (line["probe"], line["resolver"], line["rcode"]) == (
        EXIT_IP,
        EXIT_RESOLVER,
        "NOERROR",
    )


def test_fetch_without_logs_says_what_is_missing(tmp_path: Path) -> None:
    directory = campaign(tmp_path, [record("a" * 12, "valid", po.OK, 200)], [], [])
    save_manifest(directory, Manifest("c", "proxy", T0, extra={"zone": ZONE}))
    with stderr_capture() as err:
        result = CliRunner().invoke(app, ["fetch", str(directory)])
    assert result.exit_code == 1
    assert "--query-log" in err.getvalue()
    with stderr_capture() as err:
        result = CliRunner().invoke(
            app,
            ["fetch", str(directory), "--query-log", str(tmp_path / "nope.jsonl"),
             "--http-log", str(tmp_path / "http.jsonl")],
        )  # fmt: skip
    assert result.exit_code == 1 and "nope.jsonl: no such log file" in err.getvalue()


def test_requests_dir_required(tmp_path: Path) -> None:
    from rootcanary.errors import DataError

    (tmp_path / "c").mkdir()
    with pytest.raises(DataError, match="no proxy/requests"):
        join_campaign(tmp_path / "c", zone=ZONE, query_logs=[], http_logs=[])


def test_classify_reads_the_joined_campaign(tmp_path: Path) -> None:
    """The join's observations are what `rootcanary classify` expects: one
    vantage point per exit and resolver, its state from the rcodes."""
    V, N = "aaaaaaaaaaaa", "bbbbbbbbbbbb"  # a validating and a non-validating exit
    requests = [
        record(V, "valid", po.OK, 200),
        record(V, "bogus-sig", po.DNS_ERROR, 502, code="ERR_READ_ERROR"),
        record(N, "valid", po.OK, 200, session="s2", index=1),
        record(N, "bogus-sig", po.OK, 200, session="s2", index=1),
    ]
    queries = [
        query(name("valid", V), EXIT_RESOLVER),
        query(name("bogus-sig", V), EXIT_RESOLVER),
        query(name("valid", N), "198.51.100.2"),
        query(name("bogus-sig", N), "198.51.100.2"),
    ]
    hits = [
        hit(name("valid", V).rstrip(".")),
        hit(name("valid", N).rstrip("."), src="203.0.113.10"),
        hit(name("bogus-sig", N).rstrip("."), src="203.0.113.10"),
    ]
    directory = campaign(tmp_path, requests, queries, hits)
    roles = {"valid": "valid", "bogus-sig": "bogus-sig"}
    save_manifest(
        directory, Manifest("c", "proxy", T0, roles=roles, extra={"zone": ZONE})
    )
    join(directory, tmp_path)
    with stderr_capture():
        result = CliRunner().invoke(app, ["classify", str(directory), "-f", "jsonl"])
    assert result.exit_code == 0
    states = {
        (r["probe"], r["resolver"]): r["validation"]
        for r in map(json.loads, result.output.splitlines())
    }
    assert states == {
        (EXIT_IP, EXIT_RESOLVER): "secure",
        ("203.0.113.10", "198.51.100.2"): "insecure",
    }
