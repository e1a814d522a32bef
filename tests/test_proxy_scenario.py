"""The [proxy] section: keys, defaults, templates and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootcanary.errors import ScenarioError
from rootcanary.scenario import load_scenario
from rootcanary.scenario.proxy import DEFAULT_USERNAME, ProxySpec, Rule, render

BASE = """
name = "p"
[[zone]]
apex = "canary.test."
test_names = true
[tests]
[proxy]
gateway = "http://127.0.40.2:22225"
params = { customer = "hl_1", zone = "res" }
"""


def load(tmp_path: Path, extra: str = "", base: str = BASE) -> ProxySpec:
    path = tmp_path / "p.toml"
    path.write_text(base + extra)
    spec = load_scenario(path).proxy
    assert spec is not None
    return spec


def test_defaults_follow_bright_data(tmp_path: Path) -> None:
    spec = load(tmp_path)
    assert spec.username == DEFAULT_USERNAME
    assert spec.exit_id_headers[0] == "x-brd-ip"
    assert spec.gateway_port == 22225
    assert spec.password_env == "ROOTCANARY_PROXY_PASSWORD"


def test_every_key_is_read(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        """
countries = ["de", "br"]
asns = [3320]
sessions = 7
concurrency = 3
rate = 2.5
timeout = "4s"
retries = 1
retry_delay = "250ms"
port = 8080
exit_id_headers = ["X-Exit"]
error_code_headers = ["x-code"]
error_headers = ["x-code"]
retry_on = [{ status = 503 }]
dns_fail_on = [{ status = 502, header = "X-Code", prefix = "dns" }]
provider_resolvers = ["192.0.2.0/24", "2001:db8::53"]
http_log = "logs/http.jsonl"
""",
    )
    s = spec
    assert (s.countries, s.asns, s.sessions) == (("de", "br"), (3320,), 7)
    assert s.concurrency == 3 and s.rate == 2.5 and s.retries == 1
    assert s.timeout == 4 and s.retry_delay == 0.25 and s.port == 8080
    assert s.exit_id_headers == ("x-exit",)
    assert s.dns_fail_on == (Rule(502, "x-code", "dns"),)
    assert s.http_log == tmp_path / "logs" / "http.jsonl"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('gateway = "http://u:pw@127.0.0.1:1"\n', "no credentials"),
        ('gateway = "https://127.0.0.1:1"\n', "expected http://HOST:PORT"),
        ('password = "hunter2"\n', "must contain {secret}"),
        ('username = "u-{nosuch}"\n', "placeholder {nosuch} has no value"),
        ('username = "u-{secret}"\n', "the password goes in password_env"),
        ('password_env = "1BAD"\n', "not an environment variable name"),
        ('countries = ["d-e"]\n', "not a country code"),
        ('retry_on = [{ prefix = "x" }]\n', "needs a header"),
        ("dns_fail_on = [{ }]\n", "needs a status, a header or both"),
        ('provider_resolvers = ["nonsense"]\n', "not an address"),
        ("sesions = 3\n", "unknown key 'sesions'"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    base = BASE.replace('gateway = "http://127.0.40.2:22225"\n', "")
    if not extra.startswith("gateway"):
        base += 'gateway = "http://127.0.40.2:22225"\n'
    with pytest.raises(ScenarioError, match="proxy") as info:
        load(tmp_path, extra, base)
    assert message in str(info.value)


def test_params_cannot_shadow_session_fields(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"proxy\.params\.session"):
        load(tmp_path, base=BASE.replace('zone = "res"', 'zone = "res", session = "x"'))


def test_render_fills_conditional_placeholders() -> None:
    values = {
        "customer": "c1",
        "zone": "z",
        "session": "ab12",
        "country": "",
        "asn": "",
    }
    assert render(DEFAULT_USERNAME, values) == (
        "brd-customer-c1-zone-z-dns-remote-session-ab12"
    )
    values |= {"country": "de", "asn": "3320"}
    assert render(DEFAULT_USERNAME, values) == (
        "brd-customer-c1-zone-z-dns-remote-country-de-asn-3320-session-ab12"
    )
    # IPRoyal style: tokens in the password, "_" separated.
    assert render(
        "{secret}{country:_country-%s}", {"secret": "pw", "country": "br"}
    ) == ("pw_country-br")
    with pytest.raises(KeyError):
        render("{customer}", {})


def test_the_example_scenario_loads(repo: Path) -> None:
    scenario = load_scenario(repo / "scenarios" / "proxy-brightdata.toml")
    assert scenario.proxy is not None and scenario.tests is not None
    assert scenario.server.http_listen == (("192.0.2.10", 80),)
    assert scenario.proxy.gateway == "http://brd.superproxy.io:33335"
