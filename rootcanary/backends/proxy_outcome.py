"""What a proxy's answer means: pure functions over status and headers.

The prober asks these after every request; the join reads what they decided
from the request log. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rootcanary.scenario.proxy import ProxySpec

#: Final outcomes of one request, as written to the request log.
OK = "ok"  # an answer from the target (our web server or something on its name)
DNS_ERROR = "dns_error"  # the provider says the name did not resolve
AUTH_FAILED = "auth_failed"  # 407: credentials, zone, allow-list, KYC
PROVIDER_ERROR = "provider_error"  # any other error status
TIMEOUT = "timeout"  # no complete answer within the request timeout
GATEWAY_UNREACHABLE = "gateway_unreachable"  # no TCP connection to the gateway
DISCONNECTED = "disconnected"  # the gateway closed without an answer
CLIENT_ERROR = "client_error"  # anything else aiohttp raised
SKIPPED = "skipped"  # not sent: an earlier request of the session failed hard

OUTCOMES = (
    OK,
    DNS_ERROR,
    AUTH_FAILED,
    PROVIDER_ERROR,
    TIMEOUT,
    GATEWAY_UNREACHABLE,
    DISCONNECTED,
    CLIENT_ERROR,
    SKIPPED,
)
#: After these, the rest of a session is skipped: the same gateway or exit
#: would fail the same way, and each try could cost a whole timeout.
HARD_FAILURES = frozenset({AUTH_FAILED, TIMEOUT, GATEWAY_UNREACHABLE})


@dataclass(frozen=True)
class ProxyStatus:
    """One member of an RFC 9209 Proxy-Status header (one intermediary)."""

    proxy: str
    params: dict[str, str | int | bool] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        value = self.params.get("error")
        return value if isinstance(value, str) else None

    @property
    def details(self) -> str | None:
        value = self.params.get("details")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Verdict:
    """What one response means: final outcome, or retry."""

    outcome: str
    retry: bool
    error_code: str | None
    exit_id: str | None
    error_text: str | None


# RFC 8941 §3.3: tokens, strings, integers, booleans; enough for RFC 9209 §2.
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_INTEGER = re.compile(r"-?[0-9]{1,15}")


def parse_proxy_status(value: str) -> list[ProxyStatus] | None:
    """Parse a Proxy-Status field (RFC 9209 §2, an RFC 8941 §3.1 List).

    Returns the members in field order (RFC 9209 §2: the first is closest to
    the origin server, the last closest to us), or None when malformed.
    """
    members: list[ProxyStatus] = []
    pos, end = 0, len(value)
    while True:
        pos = _skip_ws(value, pos)
        item = _bare_item(value, pos)
        if item is None or not isinstance(item[0], str):
            return None
        proxy, pos = item[0], item[1]
        params: dict[str, str | int | bool] = {}
        while pos < end and value[pos] == ";":
            pos = _skip_ws(value, pos + 1)
            key_match = _KEY.match(value, pos)
            if not key_match:
                return None
            key, pos = key_match.group(), key_match.end()
            if pos < end and value[pos] == "=":
                parsed = _bare_item(value, pos + 1)
                if parsed is None:
                    return None
                params[key], pos = parsed
            else:
                params[key] = True
        members.append(ProxyStatus(proxy, params))
        pos = _skip_ws(value, pos)
        if pos >= end:
            return members
        if value[pos] != ",":
            return None
        pos += 1


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _bare_item(text: str, pos: int) -> tuple[str | int | bool, int] | None:
    if pos >= len(text):
        return None
    if text[pos] == '"':
        out, pos = [], pos + 1
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
                out.append(text[pos + 1])
                pos += 2
            elif char == '"':
                return "".join(out), pos + 1
            else:
                out.append(char)
                pos += 1
        return None
    if text[pos] == "?" and text[pos + 1 : pos + 2] in ("0", "1"):
        return text[pos + 1] == "1", pos + 2
    match = _INTEGER.match(text, pos)
    if match:
        return int(match.group()), match.end()
    match = _TOKEN.match(text, pos)
    if match:
        return match.group(), match.end()
    return None


def error_code(headers: Mapping[str, str], spec: ProxySpec) -> str | None:
    """The provider's error code: the first token of the first code header,
    else the first token of an RFC 9209 ``details`` (Bright Data puts its code
    there, proxy.md §1.4), else the RFC 9209 ``error`` type itself."""
    for name in spec.error_code_headers:
        value = headers.get(name)
        if value and value.split():
            return value.split()[0]
    status = headers.get("proxy-status")
    members = parse_proxy_status(status) if status else None
    if members:
        last = members[-1]
        if last.details:
            token = last.details.split(":", 1)[0].strip()
            if token and " " not in token:
                return token
        return last.error
    return None


def dns_error_params(headers: Mapping[str, str]) -> tuple[str | None, int | None]:
    """RFC 9209 §2.3.2 ``dns_error`` parameters (rcode, info-code) if present."""
    status = headers.get("proxy-status")
    members = parse_proxy_status(status) if status else None
    for member in reversed(members or []):
        if member.error == "dns_error":
            rcode = member.params.get("rcode")
            info = member.params.get("info-code")
            return (
                rcode.upper() if isinstance(rcode, str) else None,
                info if isinstance(info, int) and not isinstance(info, bool) else None,
            )
    return None, None


def exit_id(headers: Mapping[str, str], spec: ProxySpec) -> str | None:
    for name in spec.exit_id_headers:
        value = headers.get(name)
        if value and value.strip():
            # x-hola-ip carries "ztun 943ms z672 158.46.203.119 xx ..." (§1.3);
            # keep it whole: it only groups requests, the web log has the IP.
            return value.strip()
    return None


def error_text(headers: Mapping[str, str], spec: ProxySpec) -> str | None:
    parts = [
        f"{name}: {headers[name]}" for name in spec.error_headers if name in headers
    ]
    return "; ".join(parts) or None


def judge(
    status: int, headers: Mapping[str, str], spec: ProxySpec, attempt: int
) -> Verdict:
    """Classify one HTTP response; ``attempt`` counts from 1.

    Headers must be a case-insensitive mapping with lower-case lookups
    (aiohttp's CIMultiDictProxy, or a dict of lower-cased names).
    """
    code = error_code(headers, spec)
    text = error_text(headers, spec)
    ident = exit_id(headers, spec)
    if any(rule.matches(status, headers) for rule in spec.retry_on):
        retry = attempt <= spec.retries
        return Verdict(PROVIDER_ERROR, retry, code, ident, text)
    if status == 407:
        return Verdict(AUTH_FAILED, False, code, ident, text)
    if any(rule.matches(status, headers) for rule in spec.dns_fail_on):
        return Verdict(DNS_ERROR, False, code, ident, text)
    if status < 400:
        return Verdict(OK, False, None, ident, None)
    return Verdict(PROVIDER_ERROR, False, code, ident, text)


def retry_after(headers: Mapping[str, str], default: float, cap: float) -> float:
    """RFC 9110 §10.2.3 Retry-After in seconds (delay form only), capped."""
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), cap)
    return min(default, cap)
