"""The ``atlas`` branch of ``rootcanary schedule``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from rootcanary.backends.atlas import (
    AtlasClient,
    Estimate,
    RetryPolicy,
    Scheduler,
    estimate,
    locked,
    pending_bodies,
    prepare,
    zone_problem,
)
from rootcanary.backends.atlas.campaign import existing_campaign
from rootcanary.backends.atlas.probes import load_probe_file
from rootcanary.backends.atlas.schedule import (
    ProbeSource,
    api_probe_source,
    atlas_spec,
    file_probe_source,
)
from rootcanary.cli import atlas_options
from rootcanary.console import console
from rootcanary.errors import ConfigError
from rootcanary.scenario import Scenario
from rootcanary.scenario.atlas import AtlasSpec


@dataclass(frozen=True)
class AtlasScheduleOptions:
    dry_run: bool = False
    json_output: bool = False
    yes: bool = False
    key: str | None = None
    server: str | None = None
    ca_file: Path | None = None
    probes_file: Path | None = None
    wait_for_slots: float = 0.0


def schedule_atlas(
    scenario: Scenario, directory: Path, options: AtlasScheduleOptions
) -> None:
    spec = atlas_spec(scenario)
    where = atlas_options.endpoint(
        options.server, options.ca_file, existing_campaign(directory)
    )
    assert scenario.tests is not None
    problem = zone_problem(scenario.tests.zone) if where.public else None
    if problem and not options.dry_run:
        raise ConfigError(f"{scenario.path}: {problem}")
    if problem:
        console.warn(escape(problem))
    policy = RetryPolicy(
        spec.limits.retries,
        spec.limits.backoff,
        spec.limits.backoff_max,
        spec.limits.http_timeout,
    )
    with locked(directory):
        campaign = prepare(scenario, directory, where, _probe_source(options, where))
        if options.dry_run:
            _dry_run(campaign.attempted, pending_bodies(campaign), spec, options)
            return
        client = atlas_options.client(where, options.key, policy, required=True)
        scheduler = Scheduler(campaign, client, spec, options.wait_for_slots)
        if campaign.attempted:
            scheduler.reconcile()
        bodies = pending_bodies(campaign)
        if not bodies:
            console.success(
                escape(
                    f"all {len(campaign.entries)} measurements of {directory} "
                    "exist; nothing to create"
                )
            )
            return
        _show_estimate(estimate(bodies, spec, int(time.time())), spec)
        if not options.yes:
            _confirm(sum(len(b["definitions"]) for b in bodies))
        result = scheduler.run(reconciled=True)
    for entry in campaign.created():
        if entry["msm_id"] in result.created or entry["msm_id"] in result.adopted:
            _print_created(entry, where.server, options.json_output)
    console.success(
        escape(
            f"{len(result.created)} created, {len(result.adopted)} adopted; "
            f"{len(campaign.created())} of {len(campaign.entries)} measurements "
            f"exist. Fetch results with: rootcanary fetch {directory}"
        )
    )


def _probe_source(options: AtlasScheduleOptions, where: Any) -> ProbeSource:
    if options.probes_file is not None:
        return file_probe_source(load_probe_file(options.probes_file))
    # The probe list is public metadata: read without a key, nothing is spent.
    reader = AtlasClient(where, None, RetryPolicy(retries=3, backoff=1.0))
    source = api_probe_source(reader)

    def announced(*args: Any) -> Any:
        console.info(f"reading the public probe list from {where.server}")
        return source(*args)

    return announced


def _dry_run(
    attempted: bool,
    bodies: list[dict[str, Any]],
    spec: AtlasSpec,
    options: AtlasScheduleOptions,
) -> None:
    if options.json_output:
        console.data(json.dumps(bodies, indent=2))
    else:
        for number, body in enumerate(bodies, 1):
            probes = sum(int(s["requested"]) for s in body["probes"])
            console.data(
                f"# request {number} of {len(bodies)}: "
                f"{len(body['definitions'])} definitions, {probes} probes"
            )
            console.data(json.dumps(body, indent=2))
    _show_estimate(estimate(bodies, spec, int(time.time())), spec)
    if attempted:
        console.info(
            "creation was attempted before: a real run first adopts measurements "
            "that exist but were not recorded, so it may send less than this"
        )
    console.info("dry run: nothing was sent")


def _show_estimate(est: Estimate, spec: AtlasSpec) -> None:
    costs = (
        f"{spec.credits_per_result:g} credits per result"
        if spec.credits_per_result
        else "10 credits per UDP and 20 per TCP result (assumed)"
    )
    console.info(
        f"{est.measurements} measurements in {est.requests} requests, "
        f"{est.probes} probes per address family"
    )
    console.info(
        f"estimate: {est.results_per_day:,.0f} results and "
        f"{est.credits_per_day:,.0f} credits per day at {costs}"
        + (", one-off results counted double" if spec.oneoff else "")
    )
    if est.credits_total is not None:
        span = f" over {est.days:.1f} days" if est.days is not None else ""
        console.info(f"estimate: {est.credits_total:,.0f} credits in all{span}")
    else:
        console.warn("no stop time: credits are spent until `rootcanary stop`")
    if est.credits_per_day > spec.limits.credits_per_day:
        console.warn(
            escape(
                f"that is more than the daily spending limit of "
                f"{spec.limits.credits_per_day:,} credits ([atlas.limits] "
                "credits_per_day): the platform may refuse or stop measurements"
            )
        )


def _confirm(count: int) -> None:
    try:
        agreed = typer.confirm(
            f"create {count} RIPE Atlas measurements now?", default=False, err=True
        )
    except typer.Abort:
        agreed = False
    if not agreed:
        raise ConfigError("not confirmed: nothing was created (--yes skips this)")


def _print_created(entry: dict[str, Any], server: str, as_json: bool) -> None:
    url = f"https://{server}/measurements/{entry['msm_id']}/"
    if as_json:
        row = {k: entry[k] for k in ("msm_id", "role", "af", "slot", "created")}
        console.data(json.dumps({**row, "url": url}))
    else:
        console.data(f"{entry['msm_id']}\t{entry['role']}\taf{entry['af']}\t{url}")
