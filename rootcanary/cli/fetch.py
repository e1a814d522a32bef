"""``rootcanary fetch``: download a campaign's results (dispatch on its backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rootcanary.backends.atlas import Fetcher, load_campaign, locked
from rootcanary.backends.atlas.fetch import DEFAULT_OVERLAP, DEFAULT_WINDOW, Window
from rootcanary.campaign import Manifest, load_manifest, save_manifest
from rootcanary.cli import atlas_options
from rootcanary.cli.common import guarded, report_tally
from rootcanary.config import parse_duration
from rootcanary.console import console
from rootcanary.errors import ConfigError, RootCanaryError
from rootcanary.observation import Tally


def _seconds(option: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def fetch_atlas(
    directory: Path,
    key: str | None,
    server: str | None,
    ca_file: Path | None,
    overlap: float,
    window: float,
    msm_ids: list[int],
) -> None:
    campaign = load_campaign(directory)
    where = atlas_options.endpoint(server, ca_file, campaign)
    policy = atlas_options.policy_of(campaign)
    client = atlas_options.client(where, key, policy, required=False)
    entries = campaign.created()
    if msm_ids:
        unknown = sorted(set(msm_ids) - {e["msm_id"] for e in entries})
        if unknown:
            raise ConfigError(
                f"--msm: not measurements of this campaign: "
                f"{', '.join(map(str, unknown))}"
            )
        entries = [e for e in entries if e["msm_id"] in msm_ids]
    if not entries:
        console.warn(
            escape(f"{directory}: no measurement to fetch (none created yet?)")
        )
        return
    tally = Tally()
    fetcher = Fetcher(campaign, client, overlap=overlap, window=window, tally=tally)
    with locked(directory):
        plan = fetcher.plan(entries)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[new]} new"),
            console=console.err,
            disable=console.verbosity < 0,
        ) as progress:
            task = progress.add_task("fetching", total=len(plan), new=0)
            added = 0

            def advance(item: Window, new: int) -> None:
                nonlocal added
                added += new
                progress.update(
                    task,
                    advance=1,
                    new=added,
                    description=f"measurement {item.msm_id}",
                )

            reports = fetcher.fetch(entries, advance)
    for report in reports:
        console.detail(
            f"measurement {report.msm_id}: {report.new} new, "
            f"{report.repeated} already stored"
        )
    report_tally(tally, "new results")
    console.success(
        escape(
            f"results are in {directory / 'results'}; next: rootcanary classify "
            f"{directory}"
        )
    )


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    @guarded
    def fetch(
        campaign: atlas_options.CampaignArg,
        key: atlas_options.KeyOption = None,
        server: atlas_options.ServerOption = None,
        ca_file: atlas_options.CaFileOption = None,
        overlap: Annotated[
            str,
            typer.Option(
                help="atlas: ask again for this span before the last stored "
                "result, for late uploads (duplicates are dropped).",
            ),
        ] = f"{int(DEFAULT_OVERLAP)}s",
        window: Annotated[
            str,
            typer.Option(help="atlas: time span asked for (and stored) per request."),
        ] = f"{int(DEFAULT_WINDOW)}s",
        msm: Annotated[
            list[int] | None,
            typer.Option("--msm", help="Only these measurement ids (repeatable)."),
        ] = None,
        query_log: Annotated[
            list[Path] | None,
            typer.Option(
                "--query-log",
                help="proxy: the server's query log(s) (default: the campaign's).",
            ),
        ] = None,
        http_log: Annotated[
            list[Path] | None,
            typer.Option(
                "--http-log",
                help="proxy: the HTTP responder's log(s) (default: the campaign's).",
            ),
        ] = None,
    ) -> None:
        """Download the campaign's new results; safe to interrupt and rerun."""
        manifest = load_manifest(campaign)
        if manifest.backend == "local":
            console.info(
                escape(
                    "a local campaign needs no fetch: its observations were "
                    f"written while it ran; next: rootcanary classify {campaign}"
                )
            )
            return
        if manifest.backend == "proxy":
            fetch_proxy(campaign, manifest, query_log or [], http_log or [])
            return
        if manifest.backend != "atlas":
            raise RootCanaryError(
                f"fetching {manifest.backend} campaigns is not available in this "
                "version yet"
            )
        fetch_atlas(
            campaign,
            key,
            server,
            ca_file,
            _seconds("--overlap", overlap),
            _seconds("--window", window),
            list(msm or ()),
        )


def fetch_proxy(
    directory: Path, manifest: Manifest, query_logs: list[Path], http_logs: list[Path]
) -> None:
    """The proxy backend: join the request log with the DNS and HTTP logs."""
    from rootcanary.backends.proxy_join import join_campaign
    from rootcanary.scenario.proxy import DEFAULT_GATE_CODES

    settings = manifest.extra.get("proxy") or {}
    queries = query_logs or _recorded(settings, "query_log", "--query-log")
    hits = http_logs or _recorded(settings, "http_log", "--http-log")
    result = join_campaign(
        directory,
        zone=str(manifest.extra.get("zone", "")),
        query_logs=queries,
        http_logs=hits,
        provider_resolvers=settings.get("provider_resolvers") or (),
        gate_codes=settings.get("gate_codes") or DEFAULT_GATE_CODES,
    )
    report_tally(result.requests, "request records")
    report_tally(result.queries, "query-log lines")
    report_tally(result.hits, "web-log lines")
    for reason, count in sorted(result.unjoinable.items()):
        console.warn(escape(f"{count} request records not joined: {reason}"))
    for reason, count in sorted(result.ignored.items()):
        console.detail("%d %s", count, escape(reason))
    rcodes = ", ".join(f"{n} {k}" for k, n in sorted(result.rcodes.items()))
    console.info(
        f"{result.sessions} sessions, {result.observations} observations ({rcodes})"
    )
    manifest.extra["join"] = result.as_dict()
    save_manifest(directory, manifest)
    console.success(
        escape(f"observations in {result.file}; next: rootcanary classify {directory}")
    )


def _recorded(settings: dict[str, object], key: str, option: str) -> list[Path]:
    value = settings.get(key)
    if not isinstance(value, str):
        raise ConfigError(
            f"the campaign does not say where its {key.replace('_', ' ')} is: "
            f"give {option} FILE"
        )
    return [Path(value)]
