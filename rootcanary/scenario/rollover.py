"""The ``[rollover]`` section: a root KSK rollover timeline to replay.

Only the section's presence is recognised so far; the replay defines its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary.config import Table
from rootcanary.scenario.zones import ZoneSpec


@dataclass(frozen=True)
class RolloverSpec:
    pass


def parse_rollover(
    table: Table | None, zones: tuple[ZoneSpec, ...]
) -> RolloverSpec | None:
    if table is None:
        return None
    table.fail(None, "this section is not supported by this version of rootcanary")
