"""The ``[tests]`` section: which test names a campaign probes.

Example::

    [tests]
    zone = "canary.test."          # the test zone Z (default: the scenario's own)
    bogus = ["sig", "expired"]     # default: every bogus kind
    keytags = [20326, 38696]       # RFC 8509 sentinel probes for these key tags
    root_keytags = true            # also the KSK tags of the scenario's private root
    whoami = true
    dnskey = true                  # the root DNSKEY set
    big = false
    algorithms = ["d2a13n1"]       # algorithm-matrix zones, or "all"
    qtype = "A"
"""

from __future__ import annotations

from dataclasses import dataclass

from rootcanary import names
from rootcanary.config import Table
from rootcanary.scenario.zones import ZoneSpec


@dataclass(frozen=True)
class TestsSpec:
    zone: str
    valid: bool = True
    bogus: tuple[str, ...] = names.BOGUS_KINDS
    keytags: tuple[int, ...] = ()
    root_keytags: bool = False
    whoami: bool = True
    dnskey: bool = True
    big: bool = False
    algorithms: tuple[str, ...] | str = ()
    qtype: str = "A"

    __test__ = False  # not a pytest class


def parse_tests(
    table: Table | None, zones: tuple[ZoneSpec, ...], top: Table
) -> TestsSpec | None:
    if table is None:
        return None
    own = next((z.apex for z in zones if z.test_names), None)
    zone_text = table.text("zone", own)
    if zone_text is None:
        table.fail(
            "zone", "required: no [[zone]] of this scenario has test_names = true"
        )
    bogus = table.items("bogus", str, names.BOGUS_KINDS)
    for index, kind in enumerate(bogus):
        if kind not in names.BOGUS_KINDS:
            table.fail(
                f"bogus[{index}]", f"unknown kind {kind!r}; known: {names.BOGUS_KINDS}"
            )
    keytags = table.items("keytags", int, ())
    for index, tag in enumerate(keytags):
        if not 0 <= tag <= 65535:
            table.fail(f"keytags[{index}]", f"key tags are 0..65535, got {tag}")
    algorithms: tuple[str, ...] | str = ()
    if table.has("algorithms"):
        if table.raw("algorithms") == "all":
            algorithms = "all"
        else:
            algorithms = table.items("algorithms", str)
            for index, label in enumerate(algorithms):
                if names.parse_matrix_label(label) is None:
                    table.fail(f"algorithms[{index}]", f"{label!r} is not like d2a13n1")
    spec = TestsSpec(
        zone=names.absolute(zone_text),
        valid=table.flag("valid", True),
        bogus=bogus,
        keytags=keytags,
        root_keytags=table.flag("root_keytags", False),
        whoami=table.flag("whoami", True),
        dnskey=table.flag("dnskey", True),
        big=table.flag("big", False),
        algorithms=algorithms,
        qtype=table.text("qtype", "A", choices=("A", "AAAA")),
    )
    table.done()
    return spec
