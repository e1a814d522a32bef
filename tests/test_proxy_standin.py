"""The gateway stand-in speaks Bright Data's conventions (proxy.md §1)."""

from __future__ import annotations

import base64
import http.client

import pytest

from rootcanary.backends import proxy_outcome as po
from rootcanary.backends.proxy_standin import Exit, parse_username
from rootcanary.scenario.proxy import ProxySpec
from tests.proxy_util import PASSWORD, gateway, loop_thread

GW = "127.0.40.3"


def test_username_tokens() -> None:
    user = parse_username(
        "brd-customer-hl_1-zone-res-dns-remote-country-de-session-ab12-const"
    )
    assert user is not None
    assert (user.customer, user.zone) == ("hl_1", "res")
    assert user.options == {
        "dns": "remote",
        "country": "de",
        "session": "ab12",
        "const": "",
    }
    assert parse_username("lum-customer-c-zone-z") is not None
    for bad in ("brd-customer-c", "customer-c-zone-z", "brd-customer-c-zone-z-country"):
        assert parse_username(bad) is None


def request(port: int, user: str, password: str = PASSWORD) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(GW, port, timeout=10)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request(
        "GET",
        "http://x.valid.canary.test/",
        headers={"Proxy-Authorization": f"Basic {token}"},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_sessions_are_sticky_and_targeting_is_honoured() -> None:
    exits = [Exit(f"e{i}", None, "de" if i < 3 else "fr") for i in range(4)]
    with loop_thread() as loop, gateway(loop, exits, GW) as gw:
        port = gw.bound[0][1]
        base = "brd-customer-c_rootcanary-zone-residential-dns-remote"
        first = request(port, f"{base}-session-s1").headers["x-brd-ip"]
        assert all(
            request(port, f"{base}-session-s1").headers["x-brd-ip"] == first
            for _ in range(5)
        )
        others = {
            request(port, f"{base}-session-s{i}").headers["x-brd-ip"]
            for i in range(2, 6)
        }
        assert len(others) > 1  # new sessions, other exits
        french = {
            request(port, f"{base}-country-fr-session-f{i}").headers["x-brd-ip"]
            for i in range(3)
        }
        assert french == {exits[3].exit_id}
        none = request(port, f"{base}-country-br")
        assert (none.status, none.headers["x-brd-err-code"]) == (502, "peer_30030")


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("brd-customer-c_rootcanary-zone-residential", "wrong"),
        ("brd-customer-other-zone-residential", PASSWORD),
        ("brd-customer-c_rootcanary-zone-other", PASSWORD),
        ("nonsense", PASSWORD),
    ],
)
def test_bad_credentials_get_407_in_bright_data_shape(user: str, password: str) -> None:
    with loop_thread() as loop, gateway(loop, [Exit("e", None)], GW) as gw:
        response = request(gw.bound[0][1], user, password)
    assert response.status == 407
    headers = {k.lower(): v for k, v in response.headers.items()}
    assert headers["x-brd-err-code"] == "client_10000"
    assert "proxy-authenticate" in headers
    # Our own reading of it: the code from either header, and "auth_failed".
    spec = ProxySpec(gateway="http://x:1")
    verdict = po.judge(407, headers, spec, 1)
    assert (verdict.outcome, verdict.error_code) == (po.AUTH_FAILED, "client_10000")
    del headers["x-brd-err-code"]
    assert po.error_code(headers, spec) == "client_10000"  # from Proxy-Status
