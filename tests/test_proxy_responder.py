"""The HTTP responder on real loopback sockets: answers, robots.txt, the hit log."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from authserver.http import ROBOTS_TXT, HttpResponder, start_in_thread
from rootcanary.errors import ServerError
from tests.proxy_util import free_port

HOSTS = ("127.0.40.1", "127.0.40.2")


def get(
    address: tuple[str, int], path: str, headers: dict[str, str]
) -> tuple[int, str]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_logs_every_hit_on_every_address(tmp_path: Path) -> None:
    log = tmp_path / "http.jsonl"
    with start_in_thread([(HOSTS[0], 0), (HOSTS[1], 0)], log) as running:
        bound = running.bound
        assert [host for host, _ in bound] == list(HOSTS)
        status, body = get(
            bound[0],
            "/x?y=1",
            {
                # 0x20 case, as some resolvers and exits send it
                "Host": "AbCd12.Valid.canary.test",
                "User-Agent": "probe/1",
                "Via": "1.1 exit (squid/5.7)",
                "X-Forwarded-For": "192.0.2.7",
            },
        )
        assert status == 200 and body
        status, robots = get(bound[1], "/robots.txt", {"Host": "x.valid.canary.test"})
        assert (status, robots) == (200, ROBOTS_TXT)
        assert running.responder.hits == 2
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert list(first) == [
        "time", "src", "sport", "dst", "dport", "host", "method", "path",
        "user_agent", "via", "x_forwarded_for", "status",
    ]  # fmt: skip
    assert first["host"] == "AbCd12.Valid.canary.test"
    assert first["src"] == "127.0.0.1" and isinstance(first["sport"], int)
    assert (first["dst"], first["dport"]) == bound[0]
    assert (first["method"], first["path"], first["status"]) == ("GET", "/x?y=1", 200)
    assert first["via"] == "1.1 exit (squid/5.7)"
    assert first["x_forwarded_for"] == "192.0.2.7"
    assert first["time"].endswith("Z") and len(first["time"]) == 27
    assert second["dst"] == HOSTS[1] and second["path"] == "/robots.txt"


def test_long_header_values_are_clipped(tmp_path: Path) -> None:
    log = tmp_path / "http.jsonl"
    with start_in_thread([(HOSTS[0], 0)], log) as running:
        get(
            running.bound[0],
            "/",
            {"Host": "h.valid.canary.test", "User-Agent": "A" * 5000},
        )
    hit = json.loads(log.read_text())
    assert len(hit["user_agent"]) == 512


def test_address_in_use_is_a_server_error(tmp_path: Path) -> None:
    with start_in_thread([(HOSTS[0], 0)]) as running:
        taken = running.bound[0]
        with pytest.raises(
            ServerError, match=f"cannot listen on {taken[0]}:{taken[1]}"
        ):
            start_in_thread([taken], tmp_path / "other.jsonl")


def test_needs_an_address() -> None:
    with pytest.raises(ServerError):
        HttpResponder([])


def test_serve_hook_picks_the_log(tmp_path: Path) -> None:
    from rootcanary.backends.proxy_plan import start_responder
    from rootcanary.scenario import load_scenario

    base = '[[zone]]\napex = "canary.test."\ntest_names = true\n'
    plain = tmp_path / "plain.toml"
    plain.write_text(base)
    assert start_responder(load_scenario(plain), None, None) is None  # no http_listen
    path = tmp_path / "web.toml"
    port = free_port(HOSTS[0])
    path.write_text(f'[server]\nhttp_listen = ["{HOSTS[0]}:{port}"]\n' + base)
    scenario = load_scenario(path)
    queries = tmp_path / "logs" / "queries.jsonl"
    running = start_responder(scenario, queries, None)
    assert running is not None
    try:
        get(running.bound[0], "/", {"Host": "a.valid.canary.test"})
    finally:
        running.stop()
    assert json.loads((tmp_path / "logs" / "http.jsonl").read_text())["host"] == (
        "a.valid.canary.test"
    )
    explicit = tmp_path / "explicit.jsonl"
    running = start_responder(scenario, queries, explicit)
    assert running is not None
    running.stop()
    assert running.responder.log_path == explicit
