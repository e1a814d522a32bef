"""What a local campaign probes: its targets and its tests, from a scenario."""

from __future__ import annotations

from collections.abc import Sequence

from rootcanary.backends.local import Target, targets_from_testbed_state
from rootcanary.config import parse_hostport
from rootcanary.errors import ConfigError, ProbeError
from rootcanary.plan import PlannedTest, plan_tests
from rootcanary.scenario import Scenario
from rootcanary.testbed import default_run_dir, read_state


def resolve_targets(scenario: Scenario, given: Sequence[str]) -> list[Target]:
    """``--resolver`` first, then the ``[local]`` section, then a running testbed."""
    if given:
        targets = []
        for text in given:
            try:
                host, port = parse_hostport(text)
            except ValueError as exc:
                raise ConfigError(f"--resolver {text}: {exc}") from None
            targets.append(Target(text, host, port))
        return targets
    if scenario.local is not None and scenario.local.resolvers:
        return [
            Target(f"{host}:{port}" if port != 53 else host, host, port)
            for host, port in scenario.local.resolvers
        ]
    if scenario.testbed is not None:
        state = read_state(default_run_dir(scenario).resolve())
        if state is None:
            raise ProbeError(
                f"{scenario.path}: its testbed is not running: start it with "
                f"'rootcanary testbed up {scenario.path}', or give --resolver ADDR"
            )
        return targets_from_testbed_state(state)
    raise ConfigError(
        f"{scenario.path}: no resolvers to probe: give --resolver ADDR or a [local] "
        "section with resolvers"
    )


def root_keytags(scenario: Scenario) -> tuple[int, ...]:
    """The KSK tags of the scenario's private root (testbed state, else its keys)."""
    if scenario.testbed is not None:
        state = read_state(default_run_dir(scenario).resolve())
        tags = state.get("keytags") if state is not None else None
        if isinstance(tags, list):
            return tuple(int(t) for t in tags)
    if scenario.root is None:
        return ()
    from authserver.anchor import root_trust_anchor

    return root_trust_anchor(scenario, scenario.server.state_dir).key_tags


def scenario_tests(
    scenario: Scenario, keytags: Sequence[int] = ()
) -> tuple[PlannedTest, ...]:
    if scenario.tests is None:
        raise ConfigError(
            f"{scenario.path}: has no [tests] section saying what to probe"
        )
    spec = scenario.tests
    tags = keytags if spec.root_keytags and keytags else ()
    if spec.root_keytags and not keytags:
        tags = root_keytags(scenario)
    matrix: list[str] = []
    for zone in scenario.zones:
        if zone.apex == spec.zone and isinstance(zone.matrix, tuple):
            matrix = list(zone.matrix)
    return plan_tests(spec, tags, matrix)
