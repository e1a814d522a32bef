"""Scenario files: one TOML file says what to serve and what to measure.

A scenario has a name and any of these sections, each read by its own module
(errors name the file, the key and the fault):

``[server]`` and ``[[zone]]``   zones the authoritative server serves (:mod:`.zones`)
``[tests]``                     which test names to probe (:mod:`.tests`)
``[local]``                     the local backend: resolvers to query (:mod:`.local`)
``[atlas]``                     RIPE Atlas measurements (:mod:`.atlas`)
``[proxy]``                     a residential proxy network (:mod:`.proxy`)
``[testbed]``                   real resolvers on loopback (:mod:`.testbed`)
``[rollover]``                  a root KSK rollover timeline (:mod:`.rollover`)

The README documents every key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from rootcanary.config import Table, load_toml
from rootcanary.errors import ScenarioError
from rootcanary.scenario.atlas import AtlasSpec, parse_atlas
from rootcanary.scenario.local import LocalSpec, parse_local
from rootcanary.scenario.proxy import ProxySpec, parse_proxy
from rootcanary.scenario.rollover import RolloverSpec, parse_rollover
from rootcanary.scenario.testbed import TestbedSpec, parse_testbed
from rootcanary.scenario.tests import TestsSpec, parse_tests
from rootcanary.scenario.zones import ServerSpec, ZoneSpec, parse_server, parse_zones

__all__ = [
    "AtlasSpec",
    "LocalSpec",
    "ProxySpec",
    "RolloverSpec",
    "Scenario",
    "ServerSpec",
    "TestbedSpec",
    "TestsSpec",
    "ZoneSpec",
    "load_scenario",
    "parse_scenario",
]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; sections the file does not have are None/empty."""

    name: str
    description: str
    path: Path | None
    text: str
    server: ServerSpec
    zones: tuple[ZoneSpec, ...]
    tests: TestsSpec | None
    local: LocalSpec | None
    atlas: AtlasSpec | None
    proxy: ProxySpec | None
    testbed: TestbedSpec | None
    rollover: RolloverSpec | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def zone(self, apex: str) -> ZoneSpec:
        for zone in self.zones:
            if zone.apex == apex:
                return zone
        raise ScenarioError(f"{self.path}: no zone {apex!r} in this scenario")

    @property
    def test_zones(self) -> tuple[ZoneSpec, ...]:
        return tuple(zone for zone in self.zones if zone.test_names)

    @property
    def root(self) -> ZoneSpec | None:
        return next((zone for zone in self.zones if zone.apex == "."), None)


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    if path.is_dir():
        raise ScenarioError(f"{path}: is a directory, expected a scenario .toml file")
    data, text = load_toml(path)
    return parse_scenario(data, text, path)


def parse_scenario(data: dict[str, object], text: str, path: Path | None) -> Scenario:
    top = Table(data, path or "<scenario>")
    name = top.text("name", path.stem if path else "scenario")
    description = top.text("description", "")
    server = parse_server(top.table("server", None), top)
    zones = parse_zones(
        top.tables("zone"), top.table("zone_defaults", None), server, top
    )
    tests = parse_tests(top.table("tests", None), zones, top)
    scenario = Scenario(
        name=name,
        description=description,
        path=path,
        text=text,
        server=server,
        zones=zones,
        tests=tests,
        local=parse_local(top.table("local", None)),
        atlas=parse_atlas(top.table("atlas", None)),
        proxy=parse_proxy(top.table("proxy", None)),
        testbed=parse_testbed(top.table("testbed", None)),
        rollover=parse_rollover(top.table("rollover", None), zones),
    )
    top.done()
    _cross_check(scenario)
    return scenario


def _cross_check(scenario: Scenario) -> None:
    """Checks that span sections (each section checks its own keys)."""
    if scenario.rollover is not None:
        known = (
            {r.name for r in scenario.testbed.resolvers} if scenario.testbed else set()
        )
        for index, restart in enumerate(scenario.rollover.restarts):
            if restart.resolver not in known:
                raise ScenarioError(
                    f"{scenario.path}: rollover.restart[{index}].resolver: no "
                    f"[[testbed.resolver]] is named {restart.resolver!r}"
                )
