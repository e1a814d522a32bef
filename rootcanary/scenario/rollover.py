"""The ``[rollover]`` section: a root KSK rollover timeline to replay.

Example::

    [rollover]
    old = "ksk"               # key slot of the root KSK in use at the start
    new = "ksk-next"          # slot of the incoming KSK (made on first start)
    probe_interval = "10s"    # how often every resolver is probed during the run
    settle = "60s"            # how long to keep probing after the last phase

    [[rollover.phase]]
    state = "publish"         # DNSKEY {old, new}, signed by old
    at = "0s"                 # offset from the start of the run
    [[rollover.phase]]
    state = "roll"            # DNSKEY {old, new}, signed by new only
    at = "3m"
    [[rollover.phase]]
    state = "revoke"          # DNSKEY {old with REVOKE, new}, signed by both
    at = "5m"
    [[rollover.phase]]
    state = "remove"          # DNSKEY {new}, signed by new
    at = "7m"

    [[rollover.restart]]      # restart a resolver at these offsets
    resolver = "unbound-stateless"
    at = ["30s", "60s"]

Before the first phase the root is in state ``start``: DNSKEY {old}, signed by
old. The phases follow RFC 5011 §2 and the 2017-2019 root sequence; a
subset may be given, in this order.
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary.config import Table
from rootcanary.scenario.zones import ZoneSpec

#: Phase states in the only order a rollover can take.
PHASES = ("publish", "roll", "revoke", "remove")


@dataclass(frozen=True)
class Phase:
    state: str
    at: float  # seconds from the start of the run


@dataclass(frozen=True)
class Restart:
    resolver: str
    at: tuple[float, ...]


@dataclass(frozen=True)
class RolloverSpec:
    phases: tuple[Phase, ...]
    old: str = "ksk"
    new: str = "ksk-next"
    probe_interval: float = 10.0
    settle: float = 60.0
    restarts: tuple[Restart, ...] = ()

    @property
    def duration(self) -> float:
        return max((p.at for p in self.phases), default=0.0) + self.settle

    def phase_at(self, offset: float) -> str:
        """The root's state ``offset`` seconds into the run."""
        state = "start"
        for phase in self.phases:
            if phase.at <= offset:
                state = phase.state
        return state

    def time_of(self, state: str) -> float | None:
        return next((p.at for p in self.phases if p.state == state), None)


def parse_rollover(
    table: Table | None, zones: tuple[ZoneSpec, ...]
) -> RolloverSpec | None:
    if table is None:
        return None
    if not any(zone.apex == "." for zone in zones):
        table.fail(
            None, "a rollover replays the root: the scenario needs a [[zone]] '.'"
        )
    phases: list[Phase] = []
    for entry in table.tables("phase"):
        phase = Phase(entry.text("state", choices=PHASES), entry.duration("at"))
        entry.done()
        if phases:
            last = phases[-1]
            if PHASES.index(phase.state) <= PHASES.index(last.state):
                entry.fail("state", f"{phase.state!r} cannot follow {last.state!r}")
            if phase.at <= last.at:
                entry.fail("at", f"must be later than the {last.state} phase")
        phases.append(phase)
    if not phases:
        table.fail("phase", "needs at least one [[rollover.phase]]")
    restarts = []
    for entry in table.tables("restart"):
        times = entry.raw("at")
        if isinstance(times, (str, int, float)) and not isinstance(times, bool):
            times = [times]
        if not isinstance(times, list) or not times:
            entry.fail("at", "expected a duration or a list of durations")
        offsets = []
        for index, value in enumerate(times):
            sub = Table({"at": value}, entry.source, f"{entry.where}.at[{index}]")
            offsets.append(sub.duration("at"))
        restarts.append(Restart(entry.text("resolver"), tuple(sorted(offsets))))
        entry.done()
    spec = RolloverSpec(
        phases=tuple(phases),
        old=table.text("old", "ksk"),
        new=table.text("new", "ksk-next"),
        probe_interval=table.duration("probe_interval", 10.0, minimum=0.5),
        settle=table.duration("settle", 60.0),
        restarts=tuple(restarts),
    )
    if spec.old == spec.new:
        table.fail("new", "the incoming KSK needs its own slot name")
    table.done()
    return spec
