"""``rootcanary fetch``: collect a campaign's results into observations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rootcanary.campaign import Manifest, load_manifest, save_manifest
from rootcanary.cli.common import guarded, report_tally
from rootcanary.console import console
from rootcanary.errors import ConfigError, RootCanaryError

CampaignArg = Annotated[
    Path, typer.Argument(help="Campaign directory (from rootcanary schedule).")
]


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    @guarded
    def fetch(
        campaign: CampaignArg,
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
        """Download or join a campaign's results into observations/*.jsonl."""
        manifest = load_manifest(campaign)
        if manifest.backend == "proxy":
            fetch_proxy(campaign, manifest, query_log or [], http_log or [])
            return
        raise RootCanaryError(
            f"rootcanary fetch is not available for {manifest.backend} campaigns "
            "in this version yet"
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
        console.warn(f"{count} request records not joined: {reason}")
    for reason, count in sorted(result.ignored.items()):
        console.detail("%d %s", count, reason)
    rcodes = ", ".join(f"{n} {k}" for k, n in sorted(result.rcodes.items()))
    console.info(
        f"{result.sessions} sessions, {result.observations} observations ({rcodes})"
    )
    manifest.extra["join"] = result.as_dict()
    save_manifest(directory, manifest)
    console.success(
        f"observations in {result.file}; next: rootcanary classify {directory}"
    )


def _recorded(settings: dict[str, object], key: str, option: str) -> list[Path]:
    value = settings.get(key)
    if not isinstance(value, str):
        raise ConfigError(
            f"the campaign does not say where its {key.replace('_', ' ')} is: "
            f"give {option} FILE"
        )
    return [Path(value)]
