"""The ``[proxy]`` section of a scenario.

Only the section's presence is recognised so far; the backend that reads it
defines its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary.config import Table


@dataclass(frozen=True)
class ProxySpec:
    pass


def parse_proxy(table: Table | None) -> ProxySpec | None:
    if table is None:
        return None
    table.fail(None, "this section is not supported by this version of rootcanary")
