"""Scheduling a scenario on RIPE Atlas: plan, reconcile, create what is missing.

Creating a measurement spends credits and cannot be undone, so the rules are:

1. The plan (every request body) is written to the manifest before anything
   is sent, and ``extra["attempted"]`` is set before the first creation
   request; from then on the stored plan is what gets created, never a new
   one.
2. Each creation is recorded (atomically) as soon as its ids come back.
3. A run that finds creation requests were attempted first lists the
   account's measurements carrying the campaign tag and adopts those whose
   description names a slot of the plan (created, but the answer was lost
   to a crash, a kill or a network failure).
4. A creation request without a clear answer (5xx, timeout) is never simply
   repeated: the run reconciles first and only creates what is still missing.
5. Before each creation the account's running measurements are counted; the
   run waits (``wait_for_slots``) or stops rather than exceed the limit.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rootcanary import names
from rootcanary.backends.atlas.campaign import (
    AtlasCampaign,
    existing_campaign,
    new_nonce,
)
from rootcanary.backends.atlas.client import (
    AtlasClient,
    CreateOutcomeUnknown,
    Endpoint,
)
from rootcanary.backends.atlas.definitions import (
    Plan,
    build_plan,
    campaign_tag,
    parse_slot,
    subset_body,
)
from rootcanary.backends.atlas.probes import (
    ProbeSplit,
    api_filters,
    needs_probe_list,
    split_with_list,
    split_without_list,
)
from rootcanary.campaign import Manifest, now_iso
from rootcanary.errors import AtlasAPIError, AtlasError, ConfigError
from rootcanary.plan import PlannedTest, plan_tests
from rootcanary.scenario import Scenario
from rootcanary.scenario.atlas import AtlasSpec, ProbeSelection

log = logging.getLogger("rootcanary.atlas")

#: Gives the probes a selection may match, e.g. from the probe API or a file.
ProbeSource = Callable[[ProbeSelection, int], Iterable[dict[str, Any]]]

#: Special-use domains (RFC 2606, RFC 6761, RFC 6762, RFC 7686, RFC 8375,
#: RFC 9476) that probes on the public platform cannot resolve.
RESERVED_SUFFIXES = (
    "example.",
    "example.com.",
    "example.net.",
    "example.org.",
    "test.",
    "invalid.",
    "localhost.",
    "local.",
    "onion.",
    "alt.",
    "home.arpa.",
    "internal.",
)


@dataclass(frozen=True)
class Created:
    """What one run did: ids created, ids adopted from a previous run."""

    created: tuple[int, ...] = ()
    adopted: tuple[int, ...] = ()
    duplicates: tuple[int, ...] = ()


def atlas_spec(scenario: Scenario) -> AtlasSpec:
    if scenario.atlas is None:
        raise ConfigError(f"{scenario.path}: has no [atlas] section")
    if scenario.tests is None:
        raise ConfigError(f"{scenario.path}: has no [tests] section")
    return scenario.atlas


def zone_problem(zone: str) -> str | None:
    """Why public probes could not measure ``zone``, or None."""
    zone = names.absolute(zone)
    for suffix in RESERVED_SUFFIXES:
        if zone == suffix or zone.endswith("." + suffix):
            return (
                f"the test zone {zone} is a placeholder: {suffix} is a special-use "
                "domain no public resolver can reach. Put a zone you serve with "
                "`rootcanary serve` (and have delegated, with its DS at the parent) "
                "into [tests] zone and the [[zone]] apex"
            )
    return None


def planned_tests(scenario: Scenario) -> tuple[PlannedTest, ...]:
    spec = scenario.tests
    assert spec is not None
    matrix: tuple[str, ...] = ()
    if spec.algorithms == "all":
        zone = next((z for z in scenario.zones if z.apex == spec.zone), None)
        if zone is not None and isinstance(zone.matrix, tuple) and zone.matrix:
            matrix = zone.matrix
        else:
            matrix = tuple(
                names.matrix_label(d, a, n)
                for d in names.MATRIX_DIGESTS
                for a in names.MATRIX_ALGORITHMS
                for n in (1, 3)
            )
    return plan_tests(spec, root_keytags=(), matrix=matrix)


def split_probes(spec: AtlasSpec, probe_source: ProbeSource | None) -> ProbeSplit:
    limit = spec.limits.max_probes
    if not needs_probe_list(spec.probes, limit):
        return split_without_list(spec.probes, limit)
    if probe_source is None:
        raise ConfigError(
            f"the probe selection asks for more than {limit} probes (or all of "
            "them), so it must be split by probe id; that needs the probe list "
            "(read from the API, or give --probes-file)"
        )
    catalogue: dict[int, dict[str, Any]] = {}
    for selection in spec.probes:
        if selection.explicit:
            continue
        for probe in probe_source(selection, spec.af[0]):
            if isinstance(probe, dict) and isinstance(probe.get("id"), int):
                catalogue[probe["id"]] = probe
    return split_with_list(spec.probes, catalogue.values(), limit, spec.af[0])


def api_probe_source(client: AtlasClient) -> ProbeSource:
    def source(selection: ProbeSelection, af: int) -> Iterable[dict[str, Any]]:
        return client.probes(**api_filters(selection, af))

    return source


def file_probe_source(probes: list[dict[str, Any]]) -> ProbeSource:
    def source(selection: ProbeSelection, af: int) -> Iterable[dict[str, Any]]:
        return probes

    return source


def prepare(
    scenario: Scenario,
    directory: Path,
    endpoint: Endpoint,
    probe_source: ProbeSource | None = None,
    now: int | None = None,
) -> AtlasCampaign:
    """The campaign's plan: the stored one once creation began, else a new one.

    A new plan keeps an earlier plan's campaign tag (a dry run's), so what a
    dry run showed is what the real run sends. The plan is saved either way.
    """
    spec = atlas_spec(scenario)
    now = int(time.time()) if now is None else now
    existing = existing_campaign(directory)
    if existing is not None and existing.attempted:
        if existing.manifest.scenario_sha256 != scenario.sha256:
            raise AtlasError(
                f"{directory}: the scenario changed after measurements of this "
                "campaign were created; restore it, or schedule into a new "
                "campaign directory (--campaign)"
            )
        return existing
    tests = planned_tests(scenario)
    split = split_probes(spec, probe_source)
    tag = existing.tag if existing else campaign_tag(scenario.name, new_nonce())
    plan = build_plan(scenario.name, spec, tests, split.requests, tag, now)
    assert scenario.tests is not None
    manifest = Manifest(
        name=scenario.name,
        backend="atlas",
        created=existing.manifest.created if existing else now_iso(),
        scenario_path=str(scenario.path) if scenario.path else None,
        scenario_sha256=scenario.sha256,
        scenario_text=scenario.text,
        entries=_entries(plan),
        extra={
            "tag": tag,
            "zone": scenario.tests.zone,
            "server": endpoint.server,
            "ca_file": str(endpoint.ca_file) if endpoint.ca_file else None,
            "attempted": False,
            "planned": now_iso(),
            "probe_split": {"resolved": split.resolved, "matched": split.matched},
            "retry": {
                "retries": spec.limits.retries,
                "backoff": spec.limits.backoff,
                "backoff_max": spec.limits.backoff_max,
                "timeout": spec.limits.http_timeout,
            },
            "requests": [
                {k: v for k, v in body.items() if k != "definitions"}
                for body in plan.bodies
            ],
        },
    )
    campaign = AtlasCampaign(directory, manifest)
    campaign.save()
    return campaign


def _entries(plan: Plan) -> list[dict[str, Any]]:
    out = []
    for slot in plan.slots:
        definition = plan.bodies[slot.request]["definitions"][slot.position]
        out.append(
            {
                "slot": slot.index,
                "request": slot.request,
                "position": slot.position,
                "role": slot.role,
                "af": slot.af,
                "query_type": definition["query_type"],
                "query_argument": definition["query_argument"],
                "definition": definition,
                "msm_id": None,
                "created": None,
                "stopped": None,
            }
        )
    return out


def pending_bodies(campaign: AtlasCampaign) -> list[dict[str, Any]]:
    """The request bodies still to send (whole requests as planned)."""
    bodies = campaign.bodies()
    out = []
    for request, positions in campaign.missing().items():
        body = bodies[request]
        if len(positions) == len(body["definitions"]):
            out.append(body)
        else:
            out.append(subset_body(body, positions, _same_probes(campaign, request)))
    return out


def _same_probes(campaign: AtlasCampaign, request: int) -> int | None:
    ids = [
        e["msm_id"]
        for e in campaign.entries
        if e["request"] == request and e.get("msm_id") is not None
    ]
    return min(ids) if ids else None


@dataclass
class Scheduler:
    """Creates a campaign's missing measurements; see the module docstring."""

    campaign: AtlasCampaign
    client: AtlasClient
    spec: AtlasSpec
    wait_for_slots: float = 0.0
    sleep: Callable[[float], None] = time.sleep
    _created: list[int] = field(default_factory=list)
    _adopted: list[int] = field(default_factory=list)
    _duplicates: list[int] = field(default_factory=list)

    def reconcile(self) -> None:
        """Adopt measurements that carry the campaign tag but are not recorded."""
        tag = self.campaign.tag
        by_slot: dict[int, list[dict[str, Any]]] = {}
        strays: list[int] = []
        for item in self.client.my_measurements(tags=tag):
            if tag not in _tag_names(item):
                continue  # the server ignored the filter; never adopt strangers
            slot = parse_slot(str(item.get("description", "")), tag)
            if slot is None or not 0 <= slot < len(self.campaign.entries):
                strays.append(int(item["id"]))
                continue
            by_slot.setdefault(slot, []).append(item)
        entries = {e["slot"]: e for e in self.campaign.entries}
        changed = False
        for slot, items in sorted(by_slot.items()):
            items.sort(key=lambda i: int(i["id"]))
            entry = entries[slot]
            if entry.get("msm_id") is None:
                first = items[0]
                self.campaign.record(entry, int(first["id"]), _created_at(first))
                self._adopted.append(int(first["id"]))
                changed = True
                log.info(
                    "measurement %s (slot %d, %s) existed but was not recorded: "
                    "adopted",
                    first["id"],
                    slot,
                    entry["role"],
                )
            extra = [int(i["id"]) for i in items if int(i["id"]) != entry["msm_id"]]
            if extra:
                self._duplicates.extend(extra)
                log.warning(
                    "measurements %s also claim slot %d (%s); they are not "
                    "recorded in this campaign",
                    ", ".join(map(str, extra)),
                    slot,
                    entry["role"],
                )
        if strays:
            log.warning(
                "measurements %s carry the campaign tag %s but name no slot of it",
                ", ".join(map(str, strays)),
                tag,
            )
        if changed:
            self.campaign.save()

    def run(self, reconciled: bool = False) -> Created:
        """Reconcile if needed (and not ``reconciled``), then create what is missing."""
        if self.campaign.attempted and not reconciled:
            self.reconcile()
        cap = self.spec.limits.definitions_per_request or 10**9
        total = len(self.campaign.entries)
        for request in list(self.campaign.missing()):
            unknown = 0
            while positions := self.campaign.missing().get(request):
                free = self._free_slots(total)
                batch = positions[: min(free, cap)]
                body = self._body(request, batch)
                if not self.campaign.attempted:
                    self.campaign.manifest.extra["attempted"] = True
                    self.campaign.save()
                try:
                    ids = self.client.create(body)
                except CreateOutcomeUnknown as exc:
                    unknown += 1
                    if unknown > self.client.policy.retries:
                        raise AtlasError(
                            f"{exc}; gave up after {unknown} attempts. Rerun "
                            "`rootcanary schedule`: it adopts what was created"
                        ) from None
                    delay = self.client.policy.delay(unknown - 1, None)
                    log.warning(
                        "%s; listing the campaign's measurements in %.1f s before "
                        "trying again",
                        exc,
                        delay,
                    )
                    self.sleep(delay)
                    self.reconcile()
                    continue
                except AtlasAPIError as exc:
                    raise self._explain(exc, request, batch) from None
                when = now_iso()
                for position, msm_id in zip(batch, ids, strict=True):
                    self.campaign.record(
                        self.campaign.entry(request, position), msm_id, when
                    )
                self.campaign.save()
                self._created.extend(ids)
                done = len(self.campaign.created())
                log.info(
                    "created measurement%s %s (%d of %d)",
                    "s" if len(ids) > 1 else "",
                    ", ".join(map(str, ids)),
                    done,
                    total,
                )
        return Created(
            tuple(self._created), tuple(self._adopted), tuple(self._duplicates)
        )

    def _body(self, request: int, positions: list[int]) -> dict[str, Any]:
        body = self.campaign.bodies()[request]
        if positions == list(range(len(body["definitions"]))):
            return body
        return subset_body(body, positions, _same_probes(self.campaign, request))

    def _free_slots(self, total: int) -> int:
        limit = self.spec.limits.max_concurrent
        waited = 0.0
        while True:
            running = self.client.count_running()
            if running < limit:
                return limit - running
            if waited >= self.wait_for_slots:
                done = len(self.campaign.created())
                raise AtlasError(
                    f"{running} measurements are running on this account and the "
                    f"limit is {limit}: {done} of {total} measurements of this "
                    "campaign exist. Rerun `rootcanary schedule` when slots are "
                    "free (it creates only what is missing), or give "
                    "--wait-for-slots"
                )
            log.info(
                "%d measurements running, limit %d: waiting for a free slot",
                running,
                limit,
            )
            self.sleep(self.spec.limits.slot_poll)
            waited += self.spec.limits.slot_poll

    def _explain(
        self, exc: AtlasAPIError, request: int, positions: list[int]
    ) -> AtlasAPIError:
        """Name the role behind each ``/definitions/N`` pointer of the error."""
        notes = []
        for pointer in exc.pointers:
            match = re.match(r"^/definitions/(\d+)", pointer)
            if match and int(match.group(1)) < len(positions):
                entry = self.campaign.entry(request, positions[int(match.group(1))])
                notes.append(
                    f"{pointer} is the {entry['role']} test, af {entry['af']} "
                    f"(slot {entry['slot']})"
                )
        done = len(self.campaign.created())
        message = (
            f"{exc} [{'; '.join(notes) + '; ' if notes else ''}"
            f"{done} of {len(self.campaign.entries)} measurements exist]"
        )
        return AtlasAPIError(
            message, status=exc.status, detail=exc.detail, pointers=exc.pointers
        )


def _tag_names(item: dict[str, Any]) -> set[str]:
    out = set()
    for tag in item.get("tags") or ():
        if isinstance(tag, dict):
            out.add(str(tag.get("slug") or tag.get("name") or ""))
        else:
            out.add(str(tag))
    return out


def _created_at(item: dict[str, Any]) -> str:
    value = item.get("creation_time")
    if isinstance(value, int) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        return moment.isoformat(timespec="seconds") + "Z"
    return now_iso()
