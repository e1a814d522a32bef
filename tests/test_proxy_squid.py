"""squid 5.7 instances as exit nodes behind the gateway stand-in.

The end-to-end campaign (testbed resolvers, our server, join, classify) is in
test_proxy_campaign.py; here squid's own failure shapes through the gateway.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from authserver.http import start_in_thread
from rootcanary.backends import proxy_outcome as po
from rootcanary.backends.proxy_join import join_campaign
from rootcanary.backends.proxy_standin import Exit
from tests.proxy_util import (
    PASSWORD,
    PASSWORD_ENV,
    gateway,
    loop_thread,
    silent_resolver,
    squids,
    write_scenario,
)
from tests.test_proxy_prober import requests_of, schedule

pytestmark = pytest.mark.integration

BLOCK = "127.0.42"


def test_a_resolver_that_times_out_is_a_counted_dns_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    web_log = tmp_path / "http.jsonl"
    with (
        silent_resolver(f"{BLOCK}.99"),
        squids([("to", f"{BLOCK}.21", f"{BLOCK}.99")], dns_timeout=1) as running,
        start_in_thread([(f"{BLOCK}.1", 0)], web_log) as web,
        loop_thread() as loop,
        gateway(loop, [Exit("to", running["to"].url, "de")], f"{BLOCK}.2") as gw,
    ):
        scenario = write_scenario(
            tmp_path,
            gateway=f"{BLOCK}.2:{gw.bound[0][1]}",
            port=web.bound[0][1],
            sessions=1,
            timeout="20s",
        )
        result = schedule(scenario, tmp_path / "c")
        assert result.exit_code == 0, result.output
        access = (running["to"].directory / "access.log").read_text()
    records = requests_of(tmp_path / "c")
    # squid 5.7 turns a resolver timeout into 502 ERR_READ_ERROR (proxy.md §6).
    assert {(r["status"], r["error_code"], r["outcome"]) for r in records} == {
        (502, "ERR_READ_ERROR", po.DNS_ERROR)
    }
    assert all(r["exit_id"] == Exit("to", None).exit_id for r in records)
    assert access.count("TCP_MISS/502") == len(records)
    (tmp_path / "queries.jsonl").write_text("")
    joined = join_campaign(
        tmp_path / "c",
        zone="canary.test.",
        query_logs=[tmp_path / "queries.jsonl"],
        http_logs=[web_log],
    )
    lines = [json.loads(line) for line in joined.file.read_text().splitlines()]
    assert Counter(line["basis"] for line in lines) == {
        "dns-error-no-query": len(records)
    }
    for line in lines:
        assert line["rcode"] is None and line["probe"] == Exit("to", None).exit_id
        assert "no query for the name reached our server" in line["error"]
