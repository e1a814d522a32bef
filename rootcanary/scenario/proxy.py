"""The ``[proxy]`` section: HTTP fetches of test names through a proxy network.

Example (the defaults follow Bright Data's conventions; see the README)::

    [proxy]
    gateway = "http://brd.superproxy.io:33335"
    # the default also has {country:-country-%s}{asn:-asn-%s} before the session
    username = "brd-customer-{customer}-zone-{zone}-dns-remote{session:-session-%s}"
    password = "{secret}"                 # {secret} is the value of password_env
    password_env = "ROOTCANARY_PROXY_PASSWORD"
    params = { customer = "hl_12345", zone = "residential" }
    countries = ["de", "br"]              # one per session, in turn; [] = any
    asns = []
    sessions = 200                        # exit sessions per campaign
    concurrency = 50                      # sessions at once
    rate = 16                             # requests per second (1,000/min), 0 = none
    timeout = "30s"                       # per request
    retries = 2                           # only where retry_on matches
    retry_delay = "2s"                    # doubled on each retry
    port = 80                             # port of the test URLs
    provider_resolvers = ["192.0.2.0/24"] # the provider's own resolvers (pre-check)
    gate_codes = ["target_40001"]         # errors of the gateway's own lookup
    http_log = "logs/http.jsonl"          # the HTTP responder's log (fetch reads it)

A template placeholder ``{name}`` takes a value from ``params`` (or
``session``, ``country``, ``asn``); ``{name:TEXT}`` inserts TEXT with ``%s``
replaced by the value when there is one, and nothing otherwise. Rules
(``retry_on``, ``dns_fail_on``) are tables ``{status = 502, header =
"x-brd-err-code", prefix = "target_40001"}``; each key is optional and a rule
matches when all its keys do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rootcanary.config import Table

#: Where the exit id is (Bright Data, its older names; proxy.md §1.3).
EXIT_ID_HEADERS = ("x-brd-ip", "x-luminati-ip", "x-hola-ip")
#: Headers whose first token is the provider's error code, in order.
ERROR_CODE_HEADERS = ("x-brd-err-code", "x-squid-error")
#: Headers that carry error text (all headers are kept raw anyway).
ERROR_HEADERS = (
    "proxy-status",
    "x-brd-err-code",
    "x-brd-error",
    "x-brd-err-msg",
    "x-luminati-error",
    "x-squid-error",
    "x-error-description",
)
DEFAULT_USERNAME = (
    "brd-customer-{customer}-zone-{zone}-dns-remote"
    "{country:-country-%s}{asn:-asn-%s}{session:-session-%s}"
)
DEFAULT_PASSWORD_ENV = "ROOTCANARY_PROXY_PASSWORD"
#: Placeholders the prober fills per session; everything else comes from params.
SESSION_FIELDS = ("session", "country", "asn")

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")
# Bright Data: "values must not contain -" (proxy.md §1.1); other providers
# use "_" as the separator, so values are kept to letters, digits and "_".
_VALUE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Rule:
    """Matches a response by status and/or a header's value prefix."""

    status: int | None = None
    header: str | None = None
    prefix: str = ""

    def matches(self, status: int, headers: Mapping[str, str]) -> bool:
        if self.status is not None and status != self.status:
            return False
        if self.header is None:
            return True
        value = headers.get(self.header)
        return value is not None and value.lower().startswith(self.prefix.lower())

    def describe(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.header:
            parts.append(f"{self.header}: {self.prefix}*")
        return " ".join(parts) or "any response"


#: RFC 6585 §4: 429 means "try again later"; Bright Data's Proxy Manager
#: retries a 502 whose x-luminati-error starts with "Proxy Error" (proxy.md §1.4).
DEFAULT_RETRY_ON = (
    Rule(status=429),
    Rule(status=502, header="x-luminati-error", prefix="Proxy Error"),
)
#: A provider error that says the name did not resolve. Bright Data documents
#: only its gateway pre-check (502 target_40001) and no code for an exit
#: resolver's SERVFAIL, so any 502 without a hit on our web server counts and
#: the DNS log decides (proxy.md §1.4); squid 5.7 answers 502 ERR_READ_ERROR,
#: squid >= 6.3 503 ERR_DNS_FAIL, and 500 ERR_CANNOT_FORWARD on CONNECT (§6).
DEFAULT_DNS_FAIL_ON = (
    Rule(status=502),
    Rule(status=503, header="x-squid-error", prefix="ERR_DNS_FAIL"),
    Rule(status=500, header="x-squid-error", prefix="ERR_CANNOT_FORWARD"),
)

#: Error codes that mean the gateway's own pre-check lookup failed and no exit
#: was asked (Bright Data's 502 target_40001, proxy.md §1.2).
DEFAULT_GATE_CODES = ("target_40001",)


@dataclass(frozen=True)
class ProxySpec:
    """A validated ``[proxy]`` section; no secret is held here, only its source."""

    gateway: str = ""
    username: str = DEFAULT_USERNAME
    password: str = "{secret}"
    password_env: str = DEFAULT_PASSWORD_ENV
    params: tuple[tuple[str, str], ...] = ()
    countries: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()
    sessions: int = 100
    concurrency: int = 50
    rate: float = 16.0
    timeout: float = 30.0
    retries: int = 2
    retry_delay: float = 2.0
    port: int = 80
    exit_id_headers: tuple[str, ...] = EXIT_ID_HEADERS
    error_code_headers: tuple[str, ...] = ERROR_CODE_HEADERS
    error_headers: tuple[str, ...] = ERROR_HEADERS
    retry_on: tuple[Rule, ...] = DEFAULT_RETRY_ON
    dns_fail_on: tuple[Rule, ...] = DEFAULT_DNS_FAIL_ON
    gate_codes: tuple[str, ...] = DEFAULT_GATE_CODES
    provider_resolvers: tuple[str, ...] = ()
    http_log: Path | None = None

    @property
    def gateway_host(self) -> str:
        return urlsplit(self.gateway).hostname or ""

    @property
    def gateway_port(self) -> int:
        parts = urlsplit(self.gateway)
        return parts.port or (443 if parts.scheme == "https" else 80)


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` and ``{name:TEXT-%s}`` placeholders (see the module doc).

    Raises KeyError naming a ``{name}`` placeholder that has no value.
    """

    def one(match: re.Match[str]) -> str:
        key, fmt = match.group(1), match.group(2)
        value = values.get(key, "")
        if fmt is None:
            if key not in values:
                raise KeyError(key)
            return value
        return fmt.replace("%s", value) if value else ""

    return _PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> tuple[str, ...]:
    return tuple(match.group(1) for match in _PLACEHOLDER.finditer(template))


def parse_proxy(table: Table | None) -> ProxySpec | None:
    if table is None:
        return None
    gateway = _gateway(table)
    params = _params(table)
    username = table.text("username", DEFAULT_USERNAME)
    password = table.text("password", "{secret}")
    _check_template(table, "username", username, params, allow_secret=False)
    _check_template(table, "password", password, params, allow_secret=True)
    if "secret" not in placeholders(password):
        # A literal password here would be copied into every campaign manifest.
        table.fail(
            "password",
            "must contain {secret}; the password goes in the "
            "environment variable named by password_env",
        )
    countries = table.items("countries", str, ())
    for index, country in enumerate(countries):
        if not _VALUE.match(country):
            table.fail(f"countries[{index}]", f"not a country code: {country!r}")
    asns = table.items("asns", int, ())
    for index, asn in enumerate(asns):
        if not 0 < asn < 2**32:
            table.fail(f"asns[{index}]", f"not an AS number: {asn}")
    spec = ProxySpec(
        gateway=gateway,
        username=username,
        password=password,
        password_env=_env_name(table),
        params=params,
        countries=countries,
        asns=asns,
        sessions=table.integer("sessions", 100, minimum=1, maximum=10_000_000),
        concurrency=table.integer("concurrency", 50, minimum=1, maximum=100_000),
        rate=float(table.number("rate", 16.0, minimum=0)),
        timeout=table.duration("timeout", 30.0, minimum=0.01),
        retries=table.integer("retries", 2, minimum=0, maximum=10),
        retry_delay=table.duration("retry_delay", 2.0),
        port=table.integer("port", 80, minimum=1, maximum=65535),
        exit_id_headers=_headers(table, "exit_id_headers", EXIT_ID_HEADERS),
        error_code_headers=_headers(table, "error_code_headers", ERROR_CODE_HEADERS),
        error_headers=_headers(table, "error_headers", ERROR_HEADERS),
        retry_on=_rules(table, "retry_on", DEFAULT_RETRY_ON),
        dns_fail_on=_rules(table, "dns_fail_on", DEFAULT_DNS_FAIL_ON),
        gate_codes=table.items("gate_codes", str, DEFAULT_GATE_CODES),
        provider_resolvers=_networks(table),
        http_log=table.path("http_log", None),
    )
    table.done()
    return spec


def _gateway(table: Table) -> str:
    text = table.text("gateway")
    parts = urlsplit(text)
    if parts.scheme != "http" or not parts.hostname:
        table.fail("gateway", f"expected http://HOST:PORT, got {text!r}")
    if parts.username is not None or parts.password is not None:
        # Credentials in a scenario file would end up in the manifest.
        table.fail("gateway", "put no credentials here: use username and password_env")
    if parts.path not in ("", "/") or parts.query:
        table.fail("gateway", f"expected http://HOST:PORT without a path, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        table.fail("gateway", f"bad port in {text!r}")
    return f"http://{parts.netloc}"


def _params(table: Table) -> tuple[tuple[str, str], ...]:
    if not table.has("params"):
        return ()
    sub = table.table("params")
    out = []
    for key in list(sub.data):
        value = sub.raw(key)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            sub.fail(key, f"expected a string or integer, got {value!r}")
        if key in (*SESSION_FIELDS, "secret"):
            sub.fail(key, "is filled in by rootcanary; choose another name")
        out.append((key, str(value)))
    sub.done()
    return tuple(out)


def _check_template(
    table: Table,
    key: str,
    template: str,
    params: tuple[tuple[str, str], ...],
    *,
    allow_secret: bool,
) -> None:
    known = {name for name, _ in params} | set(SESSION_FIELDS)
    if allow_secret:
        known.add("secret")
    for name in placeholders(template):
        if name not in known:
            hint = " (the password goes in password_env)" if name == "secret" else ""
            table.fail(key, f"placeholder {{{name}}} has no value in params{hint}")
    if template.count("{") != len(placeholders(template)):
        table.fail(key, f"unbalanced or malformed placeholder in {template!r}")


def _env_name(table: Table) -> str:
    name = table.text("password_env", DEFAULT_PASSWORD_ENV)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        table.fail("password_env", f"not an environment variable name: {name!r}")
    return str(name)


def _headers(table: Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    values = table.items(key, str, default)
    return tuple(value.strip().lower() for value in values)


def _rules(table: Table, key: str, default: tuple[Rule, ...]) -> tuple[Rule, ...]:
    if not table.has(key):
        return default
    rules = []
    for sub in table.tables(key):
        status = sub.integer("status", None, minimum=100, maximum=599)
        header = sub.text("header", None)
        prefix = sub.text("prefix", "")
        if prefix and header is None:
            sub.fail("prefix", "needs a header to look in")
        if status is None and header is None:
            sub.fail(None, "a rule needs a status, a header or both")
        sub.done()
        rules.append(Rule(status, header.lower() if header else None, prefix))
    return tuple(rules)


def _networks(table: Table) -> tuple[str, ...]:
    values = table.items("provider_resolvers", str, ())
    for index, text in enumerate(values):
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            table.fail(f"provider_resolvers[{index}]", f"not an address: {text!r}")
    return tuple(values)
