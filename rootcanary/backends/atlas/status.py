"""The state of a campaign's measurements, and stopping them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rootcanary.backends.atlas.campaign import AtlasCampaign
from rootcanary.backends.atlas.client import AtlasClient
from rootcanary.backends.atlas.store import stored_count
from rootcanary.campaign import now_iso
from rootcanary.errors import AtlasError

log = logging.getLogger("rootcanary.atlas")


@dataclass(frozen=True)
class MeasurementState:
    slot: int
    role: str
    af: int
    msm_id: int | None
    state: str | None  # the API's status name, e.g. "Ongoing"; None if unknown
    probes: int | None  # participant_count
    stored: int  # results stored in the campaign directory
    stopped: str | None  # when rootcanary stopped it
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "role": self.role,
            "af": self.af,
            "msm_id": self.msm_id,
            "state": self.state,
            "probes": self.probes,
            "stored_results": self.stored,
            "stopped": self.stopped,
            "error": self.error,
        }


def states(
    campaign: AtlasCampaign, client: AtlasClient | None
) -> list[MeasurementState]:
    """Each slot's state; ``client`` None reads only the campaign directory."""
    out = []
    for entry in campaign.entries:
        msm_id = entry.get("msm_id")
        state: str | None = None if msm_id is not None else "not created"
        probes = None
        error = None
        if msm_id is not None and client is not None:
            try:
                info = client.measurement(int(msm_id))
            except AtlasError as exc:
                error = str(exc)
            else:
                status = info.get("status")
                name = status.get("name") if isinstance(status, dict) else None
                state = str(name) if name is not None else None
                count = info.get("participant_count")
                probes = count if isinstance(count, int) else None
        stored = (
            stored_count(campaign.directory, int(msm_id)) if msm_id is not None else 0
        )
        out.append(
            MeasurementState(
                slot=entry["slot"],
                role=entry["role"],
                af=entry["af"],
                msm_id=msm_id,
                state=state,
                probes=probes,
                stored=stored,
                stopped=entry.get("stopped"),
                error=error,
            )
        )
    return out


def select(
    campaign: AtlasCampaign,
    msm_ids: Sequence[int] = (),
    roles: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Created entries matching the ids or roles given (all when none given)."""
    known = {e["msm_id"] for e in campaign.created()}
    unknown = [i for i in msm_ids if i not in known]
    if unknown:
        raise AtlasError(
            f"measurement{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(str, unknown))} not in this campaign"
        )
    out = []
    for entry in campaign.created():
        if msm_ids and entry["msm_id"] not in msm_ids:
            continue
        if roles and entry["role"] not in roles:
            continue
        out.append(entry)
    return out


def stop(
    campaign: AtlasCampaign, client: AtlasClient, entries: Sequence[dict[str, Any]]
) -> list[tuple[int, str]]:
    """Stop each measurement, recording it at once; the failures, by id."""
    failures = []
    for entry in entries:
        msm_id = int(entry["msm_id"])
        if entry.get("stopped"):
            log.info(
                "measurement %d was stopped already (%s)", msm_id, entry["stopped"]
            )
            continue
        try:
            client.stop(msm_id)
        except AtlasError as exc:
            failures.append((msm_id, str(exc)))
            continue
        entry["stopped"] = now_iso()
        campaign.save()
        log.info("stopped measurement %d (%s)", msm_id, entry["role"])
    return failures
