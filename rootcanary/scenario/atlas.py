"""The ``[atlas]`` section of a scenario.

Only the section's presence is recognised so far; the backend that reads it
defines its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary.config import Table


@dataclass(frozen=True)
class AtlasSpec:
    pass


def parse_atlas(table: Table | None) -> AtlasSpec | None:
    if table is None:
        return None
    table.fail(None, "this section is not supported by this version of rootcanary")
