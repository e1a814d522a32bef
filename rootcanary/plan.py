"""From a ``[tests]`` section to the list of queries a backend sends.

Each :class:`PlannedTest` carries a query-name template with a ``{label}``
placeholder. The local and proxy backends fill it with a fresh label per probe
(cache busting); the Atlas backend fills it with a probe-side macro.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rootcanary import names
from rootcanary.scenario.tests import TestsSpec


@dataclass(frozen=True, slots=True)
class PlannedTest:
    role: str
    template: str  # absolute query name, may contain "{label}"
    qtype: str

    @property
    def unique(self) -> bool:
        return "{label}" in self.template

    def qname(self, label: str = "") -> str:
        return self.template.replace("{label}", label) if self.unique else self.template


def plan_tests(
    spec: TestsSpec,
    root_keytags: Iterable[int] = (),
    matrix: Iterable[str] = (),
) -> tuple[PlannedTest, ...]:
    """Every query of one probing round, in a stable order.

    ``root_keytags`` are the KSK tags of the scenario's private root (used when
    ``spec.root_keytags`` is set); ``matrix`` lists the algorithm zones to use
    when ``spec.algorithms == "all"``.
    """
    zone, qtype = spec.zone, spec.qtype
    out: list[PlannedTest] = []
    if spec.valid:
        out.append(PlannedTest("valid", names.valid_name(zone, "{label}"), qtype))
    for kind in spec.bogus:
        out.append(
            PlannedTest(
                names.bogus_role(kind), names.bogus_name(zone, kind, "{label}"), qtype
            )
        )
    tags = list(spec.keytags)
    if spec.root_keytags:
        tags.extend(t for t in root_keytags if t not in tags)
    for tag in tags:
        for kind in ("is-ta", "not-ta"):
            out.append(
                PlannedTest(
                    f"{kind}:{tag}",
                    names.sentinel_name(zone, kind, tag, "{label}"),
                    qtype,
                )
            )
    if spec.whoami:
        out.append(PlannedTest("whoami", names.whoami_name(zone, "{label}"), "TXT"))
    if spec.big:
        out.append(PlannedTest("big", names.big_name(zone, "{label}"), "TXT"))
    if spec.dnskey:
        out.append(PlannedTest("dnskey", ".", "DNSKEY"))
    algorithms = list(matrix) if spec.algorithms == "all" else list(spec.algorithms)
    for label in algorithms:
        for leaf in ("valid", "bogus-sig"):
            out.append(
                PlannedTest(
                    f"alg:{label}:{leaf}",
                    names.matrix_name(zone, label, leaf, "{label}"),
                    qtype,
                )
            )
    return tuple(out)
