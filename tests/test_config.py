from __future__ import annotations

from pathlib import Path

import pytest

from rootcanary.config import Table, parse_duration, parse_hostport
from rootcanary.errors import ScenarioError
from rootcanary.scenario import load_scenario


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("14d") == 14 * 86400
    assert parse_duration("250ms") == 0.25
    for bad in ("", "5", "1x", "h1", "1h 2"):
        with pytest.raises(ValueError):
            parse_duration(bad + ("x" if bad == "1h 2" else ""))


def test_hostports() -> None:
    assert parse_hostport("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_hostport("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_hostport("[::1]:5353") == ("::1", 5353)
    assert parse_hostport("::1") == ("::1", 53)
    for bad in ("localhost", "127.0.0.1:0", "[::1", "1.2.3.4:99999"):
        with pytest.raises(ValueError):
            parse_hostport(bad)


def test_table_errors_name_file_and_key() -> None:
    table = Table({"a": "x", "n": True, "sub": [{"k": 1}]}, "s.toml")
    with pytest.raises(
        ScenarioError, match=r"s.toml: n: expected an integer, got bool"
    ):
        table.integer("n")
    with pytest.raises(
        ScenarioError, match=r"s.toml: missing: required key is missing"
    ):
        table.text("missing")
    sub = table.tables("sub")[0]
    with pytest.raises(ScenarioError, match=r"s.toml: sub\[0\]: unknown key 'k'"):
        sub.done()


def test_unknown_keys_in_a_scenario_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[server]\nlisten = ["127.0.0.1:53"]\nlistne = []\n')
    with pytest.raises(ScenarioError, match=r"bad.toml: server: unknown key 'listne'"):
        load_scenario(path)


def test_bad_zone_algorithm(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[zone]]\napex = "."\nalgorithm = 3\n')
    with pytest.raises(
        ScenarioError, match=r"bad.toml: zone\[0\].algorithm: rootcanary signs"
    ):
        load_scenario(path)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server\n")
    with pytest.raises(ScenarioError, match=r"bad.toml: not valid TOML"):
        load_scenario(path)
