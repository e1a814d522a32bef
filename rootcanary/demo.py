"""``rootcanary demo``: the whole pipeline against the local testbed.

Bring the testbed up (our server with a private signed root, real resolvers),
probe every resolver once with the local backend, classify the observations,
and compare each verdict with what the resolver's configuration implies. The
expectations follow from the variants (see :mod:`rootcanary.scenario.testbed`)
and RFC 8509 §3: a validating, sentinel-aware resolver holding our KSK is
``secure`` and ``Vnew`` for its tag; PowerDNS Recursor has no sentinel support,
so ``Vind``; a non-validating one is ``insecure`` and ``nonV``; one with a
stale anchor cannot validate our root at all: ``bogus``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rootcanary.backends.local import LocalRun, ProbeSettings, Target, run_campaign
from rootcanary.backends.local_plan import scenario_tests
from rootcanary.classify import BucketState, Classification, classify
from rootcanary.errors import TestbedError
from rootcanary.scenario import Scenario
from rootcanary.testbed import Authority, RunningResolver, Testbed

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "demo.toml"


@dataclass(frozen=True)
class Expected:
    validation: str
    trust_anchor: str | None  # None: not meaningful (nothing validates)


@dataclass(frozen=True)
class Verdict:
    """One resolver's row of the demo table."""

    resolver: str
    implementation: str
    variant: str
    address: str
    validation: str
    trust_anchor: str | None
    ede: tuple[int, ...]
    upstream: tuple[str, ...]
    expected: Expected

    @property
    def problems(self) -> tuple[str, ...]:
        found = []
        if self.validation != self.expected.validation:
            found.append(
                f"validation {self.validation}, expected {self.expected.validation}"
            )
        want = self.expected.trust_anchor
        if want is not None and self.trust_anchor != want:
            found.append(f"trust anchor {self.trust_anchor}, expected {want}")
        if self.expected.validation != "bogus" and self.upstream != (self.address,):
            seen = ", ".join(self.upstream) or "nothing"
            found.append(f"whoami saw {seen}, expected {self.address}")
        return tuple(found)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class DemoResult:
    keytag: int
    verdicts: tuple[Verdict, ...]
    campaign: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


def expected_for(implementation: str, variant: str) -> Expected:
    if variant == "off":
        return Expected("insecure", "nonV")
    if variant == "stale":
        return Expected("bogus", None)
    # validating, static and stateless all hold our KSK while no roll happens.
    return Expected("secure", "Vind" if implementation == "pdns-recursor" else "Vnew")


def run_demo(
    scenario: Scenario,
    run_dir: Path | None = None,
    authority: Authority | None = None,
) -> DemoResult:
    started = time.monotonic()
    if scenario.tests is None:
        raise TestbedError(f"{scenario.path}: the demo needs a [tests] section")
    with Testbed(scenario, run_dir, authority) as testbed:
        assert testbed.anchor is not None
        keytag = testbed.anchor.keytags[0]
        campaign = testbed.run_dir / "campaign"
        shutil.rmtree(campaign, ignore_errors=True)
        run = _probe(scenario, testbed, campaign, keytag)
        result = classify(run.observations, zone=scenario.tests.zone, keytags=(keytag,))
        verdicts = tuple(
            _verdict(resolver, result, keytag) for resolver in testbed.resolvers
        )
    return DemoResult(keytag, verdicts, campaign, time.monotonic() - started)


def _probe(
    scenario: Scenario, testbed: Testbed, campaign: Path, keytag: int
) -> LocalRun:
    assert scenario.tests is not None
    targets = [Target(r.name, r.address, r.port) for r in testbed.resolvers]
    return run_campaign(
        campaign,
        name=scenario.name,
        targets=targets,
        tests=scenario_tests(scenario, (keytag,)),
        settings=ProbeSettings(timeout=3.0, retries=1),
        zone=scenario.tests.zone,
        scenario_path=scenario.path,
        scenario_text=scenario.text,
        scenario_sha256=scenario.sha256,
    )


def _verdict(resolver: RunningResolver, result: Classification, keytag: int) -> Verdict:
    bucket = _latest(result, resolver)
    trust_anchor = None
    if bucket is not None:
        trust_anchor = next(
            (t.state for t in bucket.trust_anchors if t.keytag == keytag), None
        )
    return Verdict(
        resolver=resolver.name,
        implementation=resolver.implementation,
        variant=resolver.variant,
        address=resolver.address,
        validation=bucket.validation if bucket else "unknown",
        trust_anchor=trust_anchor,
        ede=bucket.evidence.ede if bucket else (),
        upstream=tuple(bucket.upstream) if bucket else (),
        expected=expected_for(resolver.implementation, resolver.variant),
    )


def _latest(result: Classification, resolver: RunningResolver) -> BucketState | None:
    found = None
    for bucket in result.buckets:
        vantage = bucket.vantage
        if vantage.probe == resolver.name and vantage.resolver == resolver.address:
            found = bucket
    return found
