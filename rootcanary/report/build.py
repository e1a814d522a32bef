"""From a campaign or replay run directory to a :class:`~.model.Report`.

A replay run directory (``replay.json``, or ``campaign/`` beside ``server/``
while the run is still going; see briefs/replay.md) contributes its summary,
the observations of its ``campaign/`` and the server's query log. A campaign
directory (``manifest.json``) of any backend contributes its observations or
raw results; its query log is read when it keeps one (``server/queries.jsonl``
or ``queries.jsonl`` inside, or the ``query_log`` a proxy campaign's manifest
names). Any other directory is searched for data files, as ``classify`` does.
Classification and telemetry are the library's own (:mod:`rootcanary.classify`,
:mod:`rootcanary.telemetry`); this module only decides what to feed them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rootcanary.campaign import is_campaign, load_manifest
from rootcanary.classify import classify_files
from rootcanary.classify.roles import role_map_for
from rootcanary.errors import DataError
from rootcanary.observation import Tally
from rootcanary.readers.sources import gather
from rootcanary.report.model import (
    FILES,
    REPLAY,
    CampaignInfo,
    Event,
    InputCount,
    Replay,
    Report,
    ReportOptions,
)
from rootcanary.report.querylog import LOG_NAMES, read_query_logs
from rootcanary.report.replay import REPLAY_FILE, load_replay
from rootcanary.telemetry import DEFAULT_KEYTAGS

log = logging.getLogger("rootcanary.report")

DEFAULT_BUCKET = 3600
#: Bucket widths the automatic choice picks from (seconds).
NICE_BUCKETS = (
    *(1, 2, 5, 10, 15, 20, 30),
    *(60, 120, 300, 600, 900, 1200, 1800),
    *(3600, 7200, 10800, 21600, 43200, 86400),
)
#: About this many buckets over a replay's length, when it gives its length.
TARGET_BUCKETS = 120
#: The funnel follows the roll: that is when a stale anchor breaks (RFC 5011).
FUNNEL_PHASE = "roll"


@dataclass(frozen=True)
class Layout:
    """Where a directory keeps what the report reads."""

    kind: str
    data_root: Path | None  # what to gather observations from
    replay_file: Path | None
    query_logs: tuple[Path, ...]


def locate(directory: Path) -> Layout:
    """Tell a replay run, a campaign and a folder of data files apart."""
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (give a campaign or run)")
    replay = directory / REPLAY_FILE
    campaign = directory / "campaign"
    is_run = replay.is_file() or (
        is_campaign(campaign) and (directory / "server").is_dir()
    )
    if is_run:
        # Only campaign/: the query log and testbed.json are not observations.
        return Layout(
            REPLAY,
            campaign if campaign.is_dir() else None,
            replay if replay.is_file() else None,
            _logs_in(directory),
        )
    if is_campaign(directory):
        return Layout(
            load_manifest(directory).backend, directory, None, _logs_in(directory)
        )
    return Layout(FILES, directory, None, ())


def _logs_in(directory: Path) -> tuple[Path, ...]:
    return tuple(p for name in LOG_NAMES if (p := directory / name).is_file())


def _manifest_logs(directory: Path, info: CampaignInfo | None) -> tuple[Path, ...]:
    """The query log a proxy campaign's manifest names (relative: to the campaign)."""
    if info is None:
        return ()
    manifest = load_manifest(info.directory)
    found = []
    for holder in (manifest.extra, manifest.extra.get("proxy")):
        value = holder.get("query_log") if isinstance(holder, dict) else None
        if isinstance(value, str) and value:
            path = Path(value)
            for candidate in (path, directory / path, info.directory / path):
                if candidate.is_file():
                    found.append(candidate)
                    break
            else:
                log.warning("the manifest names a query log that is gone: %s", value)
    return tuple(found)


def _campaign_info(directory: Path | None) -> CampaignInfo | None:
    if directory is None or not is_campaign(directory):
        return None
    manifest = load_manifest(directory)
    zone = manifest.extra.get("zone")
    return CampaignInfo(
        directory=directory,
        name=manifest.name,
        backend=manifest.backend,
        created=manifest.created,
        scenario_path=manifest.scenario_path,
        scenario_text=manifest.scenario_text,
        zone=zone if isinstance(zone, str) else None,
        measurements=len(manifest.roles),
        entries=len(manifest.entries),
    )


def auto_bucket(replay: Replay | None) -> int:
    """About :data:`TARGET_BUCKETS` over the replay, at least two probe rounds.

    Two rounds, because a round's queries straddle a bucket edge now and then
    and a bucket needs the valid and the bogus answer to decide. Campaigns
    give no length up front (reading it would cost a pass): an hour.
    """
    if replay is None or replay.started is None or replay.finished is None:
        return DEFAULT_BUCKET
    span = (replay.finished - replay.started).total_seconds()
    interval = _float(replay.parameter("probe_interval")) or 0.0
    wanted = max(span / TARGET_BUCKETS, 2 * interval, 1.0)
    return next((w for w in NICE_BUCKETS if w >= wanted), NICE_BUCKETS[-1])


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def replay_events(replay: Replay | None) -> list[Event]:
    """The phases (the start is no change) and the restarts of a replay."""
    if replay is None:
        return []
    events = [
        Event(p.at, p.state, "phase") for p in replay.phases if p.state != "start"
    ]
    events += [Event(r.at, f"restart {r.resolver}", "restart") for r in replay.restarts]
    return events


def user_events(times: tuple[datetime, ...]) -> list[Event]:
    if len(times) == 1:
        return [Event(times[0], "event", "event")]
    return [Event(t, f"event {i}", "event") for i, t in enumerate(times, 1)]


def funnel_event(user: list[Event], replay: list[Event]) -> Event | None:
    """The first ``--event``; else the replay's roll; else its first phase."""
    if user:
        return user[0]
    phases = [e for e in replay if e.kind == "phase"]
    return next((e for e in phases if e.label == FUNNEL_PHASE), None) or (
        phases[0] if phases else None
    )


def _replay_keytags(replay: Replay | None, revoked: bool) -> tuple[int, ...]:
    if replay is None:
        return ()
    tags: list[int] = []
    for role in ("old", "new"):
        key = replay.key(role)
        if key is not None and key.tag is not None:
            tags.append(key.tag)
    if revoked:
        old = replay.key("old")
        if old is not None and old.revoked_tag is not None:
            tags.append(old.revoked_tag)
    return tuple(dict.fromkeys(tags))


def build_report(directory: Path, options: ReportOptions | None = None) -> Report:
    """Read and classify everything the directory holds (see the module doc).

    Raises :class:`~rootcanary.errors.DataError` when the directory holds
    nothing to report on; damaged lines and items are counted in
    :attr:`Report.inputs` instead.
    """
    options = options or ReportOptions()
    layout = locate(directory)
    replay_tally = Tally()
    replay = (
        load_replay(layout.replay_file, replay_tally) if layout.replay_file else None
    )
    inputs = gather([layout.data_root]) if layout.data_root else gather([])
    campaign = _campaign_info(layout.data_root)
    query_logs = tuple(
        dict.fromkeys(
            (
                *layout.query_logs,
                *_manifest_logs(directory, campaign),
                *options.query_logs,
            )
        )
    )
    if not inputs.files and not query_logs and replay is None:
        raise DataError(
            f"{directory}: nothing to report: no observations, results, query "
            "log or replay.json"
        )
    bucket = options.bucket_seconds or auto_bucket(replay)
    user = user_events(options.events)
    from_replay = replay_events(replay)
    funnel = funnel_event(user, from_replay)
    tally = Tally()
    classification = classify_files(
        inputs.files,
        tally,
        roles=role_map_for(inputs.roles, inputs.zone, (), options.zone),
        bucket_seconds=bucket,
        keytags=options.keytags or _replay_keytags(replay, False) or inputs.keytags,
        event=funnel.time if funnel else None,
    )
    counts = [InputCount.of("responses", tally)]
    query_log = None
    rfc8145_tags = (
        options.keytags
        or _replay_keytags(replay, True)
        or classification.keytags
        or DEFAULT_KEYTAGS
    )
    if query_logs:
        log_tally = Tally()
        query_log = read_query_logs(query_logs, log_tally, bucket, rfc8145_tags)
        counts.append(InputCount.of("query-log lines", log_tally))
    if layout.replay_file:
        counts.append(InputCount.of(REPLAY_FILE, replay_tally))
    return Report(
        directory=directory,
        kind=layout.kind,
        name=_name(directory, replay, campaign),
        campaign=campaign,
        replay=replay,
        classification=classification,
        data_files=inputs.files,
        query_log=query_log,
        events=tuple(sorted([*from_replay, *user], key=lambda e: (e.time, e.label))),
        funnel_event=funnel,
        rfc8145_keytags=tuple(rfc8145_tags),
        inputs=tuple(counts),
        options=options,
    )


def _name(directory: Path, replay: Replay | None, campaign: CampaignInfo | None) -> str:
    if replay is not None and replay.scenario_name:
        return replay.scenario_name
    if campaign is not None and campaign.name:
        return campaign.name
    return directory.resolve().name or str(directory)
