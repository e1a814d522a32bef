"""The prober against the gateway stand-in and the HTTP responder, on loopback.

Exits here are "direct": the gateway connects to our responder itself, so no
DNS is involved (the squid tests cover real exits and resolvers).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from authserver.http import start_in_thread
from rootcanary.backends import proxy_outcome as po
from rootcanary.backends.proxy_standin import Exit
from rootcanary.campaign import load_manifest
from rootcanary.cli import app
from tests.proxy_util import (
    PASSWORD,
    PASSWORD_ENV,
    blackhole,
    free_port,
    gateway,
    loop_thread,
    stderr_capture,
    write_scenario,
)

WEB = "127.0.40.1"
GW = "127.0.40.2"
ROLES = ["valid", "bogus-sig", "is-ta:20326", "not-ta:20326"]


def requests_of(campaign: Path) -> list[dict[str, Any]]:
    files = sorted((campaign / "proxy").glob("requests-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


class Result:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code = exit_code
        self.output = output


def schedule(scenario: Path, campaign: Path, *options: str) -> Result:
    """Run the command (``options`` go before it); ``output`` is stdout and
    stderr together."""
    argv = [*options, "schedule", str(scenario), "--backend", "proxy"]
    with stderr_capture() as err:
        result = CliRunner().invoke(app, [*argv, "-o", str(campaign)])
    return Result(result.exit_code, result.output + err.getvalue())


@pytest.fixture
def web(tmp_path: Path) -> Any:
    with start_in_thread([(WEB, 0)], tmp_path / "http.jsonl") as running:
        yield running


def test_sessions_fetch_every_name_with_one_label(
    tmp_path: Path, web: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    port = web.bound[0][1]
    exits = [
        Exit("de1", f"direct:{WEB}:{port}", "de"),
        Exit("fr1", f"direct:{WEB}:{port}", "fr"),
    ]
    with loop_thread() as loop, gateway(loop, exits, GW) as gw:
        scenario = write_scenario(
            tmp_path,
            gateway=f"{GW}:{gw.bound[0][1]}",
            port=port,
            sessions=6,
            concurrency=3,
            extra='countries = ["de", "fr"]',
        )
        result = schedule(scenario, tmp_path / "c")
        assert result.exit_code == 0, result.output
        assert gw.stats.sessions == 6
    records = requests_of(tmp_path / "c")
    assert len(records) == 6 * len(ROLES)
    assert Counter(r["outcome"] for r in records) == {po.OK: 24}
    by_label: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_label.setdefault(record["label"], []).append(record)
    assert len(by_label) == 6  # one fresh label per session ...
    for label, group in by_label.items():
        assert sorted(r["role"] for r in group) == sorted(ROLES)  # ... for all names
        assert len({r["session"] for r in group}) == 1
        assert len({r["exit_id"] for r in group}) == 1  # pinned to one exit
        assert all(label in r["qname"] for r in group)
        assert all(r["headers"]["x-brd-ip"] == r["exit_id"] for r in group)
    # Countries in turn: sessions 0, 2, 4 ask for de, the others for fr.
    assert {r["country"] for r in records if r["index"] % 2 == 0} == {"de"}
    hosts = [json.loads(line)["host"] for line in (tmp_path / "http.jsonl").open()]
    assert sorted(hosts) == sorted(r["url"][7:].rstrip("/") for r in records)
    manifest = load_manifest(tmp_path / "c")
    assert manifest.backend == "proxy"
    assert sorted(manifest.roles) == sorted(ROLES)
    assert manifest.extra["zone"] == "canary.test."
    stats = manifest.entries[-1]["stats"]
    assert (stats["tried"], stats["completed"], stats["failed"]) == (6, 6, 0)
    assert "6 exits tried, 6 completed, 0 failed" in result.output


def test_retryable_errors_are_retried_and_logged(
    tmp_path: Path, web: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    port = web.bound[0][1]
    exits = [Exit("de1", f"direct:{WEB}:{port}", "de")]
    with loop_thread() as loop, gateway(loop, exits, GW, throttle_first=True) as gw:
        scenario = write_scenario(
            tmp_path, gateway=f"{GW}:{gw.bound[0][1]}", port=port, sessions=2
        )
        assert schedule(scenario, tmp_path / "c").exit_code == 0
        assert gw.stats.throttled == 2
    records = requests_of(tmp_path / "c")
    throttled = [r for r in records if r["status"] == 429]
    assert len(throttled) == 2
    for record in throttled:
        assert record["final"] is False and record["attempt"] == 1
        assert record["error_code"] == "client_10110"
        retried = [
            r
            for r in records
            if r["label"] == record["label"] and r["role"] == record["role"]
        ]
        assert [(r["attempt"], r["final"], r["outcome"]) for r in retried] == [
            (1, False, po.PROVIDER_ERROR),
            (2, True, po.OK),
        ]
    assert sum(r["final"] for r in records) == 2 * len(ROLES)


def test_bad_password_is_a_counted_407_and_never_leaks(
    tmp_path: Path,
    web: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wr0ng-pa55-" + "x" * 8
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    caplog.set_level(logging.DEBUG)
    port = web.bound[0][1]
    exits = [Exit("de1", f"direct:{WEB}:{port}", "de")]
    with loop_thread() as loop, gateway(loop, exits, GW) as gw:
        scenario = write_scenario(
            tmp_path, gateway=f"{GW}:{gw.bound[0][1]}", port=port, sessions=3
        )
        result = schedule(scenario, tmp_path / "c", "-vv")
        assert gw.stats.auth_failed == 3, result.output  # one per session
    assert result.exit_code == 0, result.output
    records = requests_of(tmp_path / "c")
    assert Counter(r["outcome"] for r in records) == {po.AUTH_FAILED: 3, po.SKIPPED: 9}
    assert {r["error_code"] for r in records if r["status"] == 407} == {"client_10000"}
    assert "3 exits tried, 0 completed, 3 failed" in result.output
    assert_no_secret(tmp_path, [result.output, caplog.text], wrong)


def assert_no_secret(directory: Path, texts: list[str], secret: str) -> None:
    import base64

    forms = [secret, base64.b64encode(secret.encode()).decode()]
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", "replace")
            for form in forms:
                assert form not in content, f"{form!r} in {path}"
    for text in texts:
        for form in forms:
            assert form not in text


def test_missing_password_variable_is_an_error(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, gateway=f"{GW}:1")
    result = schedule(scenario, tmp_path / "c")
    assert result.exit_code == 1
    assert f"environment variable {PASSWORD_ENV}" in result.output


def test_failures_end_as_counted_outcomes(
    tmp_path: Path, web: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead exit (timeout), an unknown country (502 peer_30030), a failing
    pre-check (502 target_40001) and an unreachable gateway: every request is
    logged with its outcome, nothing crashes."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    port = web.bound[0][1]
    with loop_thread() as loop, blackhole(WEB) as dead:
        exits = [
            Exit("ok", f"direct:{WEB}:{port}", "de"),
            Exit("dead", f"http://{WEB}:{dead}", "zz"),
        ]
        with gateway(loop, exits, GW) as gw:
            scenario = write_scenario(
                tmp_path,
                gateway=f"{GW}:{gw.bound[0][1]}",
                port=port,
                sessions=3,
                concurrency=3,
                timeout="1s",
                extra='countries = ["de", "zz", "xx"]',
            )
            result = schedule(scenario, tmp_path / "c")
        # The same gateway, with a pre-check resolver that is not there.
        with gateway(
            loop, exits, GW, precheck=(WEB, free_port(WEB)), precheck_timeout=0.3
        ) as gw2:
            scenario = write_scenario(
                tmp_path,
                gateway=f"{GW}:{gw2.bound[0][1]}",
                port=port,
                sessions=1,
                timeout="5s",
                extra='countries = ["de"]',
                name="pre",
            )
            result2 = schedule(scenario, tmp_path / "c2")
            assert gw2.stats.precheck_failed == len(ROLES)
    assert result.exit_code == 0 and result2.exit_code == 0
    records = requests_of(tmp_path / "c")
    by_country = {
        c: Counter(r["outcome"] for r in records if r["country"] == c)
        for c in ("de", "zz", "xx")
    }
    assert by_country["de"] == {po.OK: 4}
    assert by_country["zz"] == {po.TIMEOUT: 1, po.SKIPPED: 3}
    # 502 with x-brd-err-code peer_30030: a 502, so "DNS error" to the prober;
    # the join sees no query from an exit resolver and calls it inconclusive.
    assert {r["error_code"] for r in records if r["country"] == "xx"} == {"peer_30030"}
    assert "3 exits tried, 2 completed, 1 failed" in result.output
    pre = requests_of(tmp_path / "c2")
    assert {(r["outcome"], r["status"], r["error_code"]) for r in pre} == {
        (po.DNS_ERROR, 502, "target_40001")
    }
    # No gateway at all.
    scenario = write_scenario(
        tmp_path, gateway=f"{GW}:{free_port(GW)}", sessions=2, name="nogw"
    )
    result3 = schedule(scenario, tmp_path / "c3")
    assert result3.exit_code == 0
    gone = requests_of(tmp_path / "c3")
    assert Counter(r["outcome"] for r in gone) == {
        po.GATEWAY_UNREACHABLE: 2,
        po.SKIPPED: 6,
    }


def test_rate_limiter_spaces_request_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from rootcanary.backends import proxy

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    monkeypatch.setattr(proxy.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(proxy.asyncio, "sleep", fake_sleep)
    limiter = proxy.RateLimiter(4.0)

    async def five() -> None:
        for _ in range(5):
            await limiter.wait()

    asyncio.run(five())
    # All five asked at the same instant: the first goes now, the others 1/4 s apart.
    assert slept == [0.25, 0.5, 0.75, 1.0]
    slept.clear()
    unlimited = proxy.RateLimiter(0)
    asyncio.run(unlimited.wait())
    assert slept == []
