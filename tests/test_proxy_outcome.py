"""What proxy answers mean: RFC 9209 Proxy-Status, error codes, retries."""

from __future__ import annotations

import pytest

from rootcanary.backends import proxy_outcome as po
from rootcanary.scenario.proxy import ProxySpec

SPEC = ProxySpec(gateway="http://127.0.40.2:1", retries=2)

# The shape Bright Data documents (proxy.md §1.4).
BRD_407 = (
    'brd.superproxy.io; received-status=407; error="http_request_denied"; '
    'details="client_10000: Invalid authentication: check credentials"'
)


def test_proxy_status_parses_bright_data_example() -> None:
    members = po.parse_proxy_status(BRD_407)
    assert members is not None and len(members) == 1
    member = members[0]
    assert member.proxy == "brd.superproxy.io"
    assert member.params["received-status"] == 407
    assert member.error == "http_request_denied"
    assert member.details == "client_10000: Invalid authentication: check credentials"


def test_proxy_status_list_and_dns_error_parameters() -> None:
    # RFC 9209 §2: one member per intermediary, closest to the origin first;
    # §2.3.2 dns_error carries rcode and info-code (an EDE, RFC 8914).
    value = (
        'exit.example; error=dns_error; rcode="SERVFAIL"; info-code=6, '
        'gw.example; error="destination_unavailable"; details="quoted \\" mark"'
    )
    members = po.parse_proxy_status(value)
    assert members is not None
    assert [m.proxy for m in members] == ["exit.example", "gw.example"]
    assert members[1].details == 'quoted " mark'
    assert po.dns_error_params({"proxy-status": value}) == ("SERVFAIL", 6)
    assert po.dns_error_params({}) == (None, None)


@pytest.mark.parametrize(
    "value",
    [
        'gw; error="unterminated',
        "gw; =x",
        "gw, ",
        "42; error=x",
        "gw; error=dns_error junk",
    ],
)
def test_malformed_proxy_status_is_none(value: str) -> None:
    assert po.parse_proxy_status(value) is None


def test_error_code_prefers_code_header_then_proxy_status() -> None:
    assert po.error_code({"x-brd-err-code": "target_40001"}, SPEC) == "target_40001"
    assert (
        po.error_code({"x-squid-error": "ERR_READ_ERROR 0"}, SPEC) == "ERR_READ_ERROR"
    )
    assert po.error_code({"proxy-status": BRD_407}, SPEC) == "client_10000"
    assert (
        po.error_code({"proxy-status": "gw; error=dns_timeout"}, SPEC) == "dns_timeout"
    )
    assert po.error_code({}, SPEC) is None


@pytest.mark.parametrize(
    ("status", "headers", "attempt", "outcome", "retry"),
    [
        (200, {"x-brd-ip": "r1"}, 1, po.OK, False),
        (407, {"x-brd-err-code": "client_10000"}, 1, po.AUTH_FAILED, False),
        (502, {"x-brd-err-code": "target_40001"}, 1, po.DNS_ERROR, False),
        (502, {"x-squid-error": "ERR_READ_ERROR 0"}, 1, po.DNS_ERROR, False),
        (503, {"x-squid-error": "ERR_DNS_FAIL 0"}, 1, po.DNS_ERROR, False),
        (503, {"x-squid-error": "ERR_CONNECT_FAIL 111"}, 1, po.PROVIDER_ERROR, False),
        (403, {"x-brd-err-code": "policy_20010"}, 1, po.PROVIDER_ERROR, False),
        (429, {"x-brd-err-code": "client_10110"}, 1, po.PROVIDER_ERROR, True),
        (429, {"x-brd-err-code": "client_10110"}, 2, po.PROVIDER_ERROR, True),
        (429, {"x-brd-err-code": "client_10110"}, 3, po.PROVIDER_ERROR, False),
        (
            502,
            {"x-luminati-error": "Proxy Error: peer gone"},
            1,
            po.PROVIDER_ERROR,
            True,
        ),
        (
            502,
            {"x-luminati-error": "Proxy Error: peer gone"},
            3,
            po.PROVIDER_ERROR,
            False,
        ),
    ],
)
def test_judge(
    status: int, headers: dict[str, str], attempt: int, outcome: str, retry: bool
) -> None:
    verdict = po.judge(status, headers, SPEC, attempt)
    assert (verdict.outcome, verdict.retry) == (outcome, retry)


def test_judge_keeps_exit_id_and_error_text() -> None:
    verdict = po.judge(
        502,
        {
            "x-brd-err-code": "target_40001",
            "x-brd-error": "Could not resolve host",
            "x-brd-ip": "r2d29b70ff204425f8e5add587d860361",
        },
        SPEC,
        1,
    )
    assert verdict.exit_id == "r2d29b70ff204425f8e5add587d860361"
    assert verdict.error_code == "target_40001"
    assert (
        verdict.error_text is not None
        and "Could not resolve host" in verdict.error_text
    )


def test_retry_after_seconds_form_is_capped() -> None:
    assert po.retry_after({"retry-after": "7"}, 1.0, 30.0) == 7.0
    assert po.retry_after({"retry-after": "999"}, 1.0, 30.0) == 30.0
    # The HTTP-date form is not used by the providers; fall back to the default.
    assert (
        po.retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 2.0, 30) == 2.0
    )


def test_proxy_name_may_be_a_string() -> None:
    # RFC 9209 §2: the member names the intermediary by a Token or a String.
    members = po.parse_proxy_status('"gw one"; error=dns_timeout')
    assert members is not None and members[0].proxy == "gw one"
