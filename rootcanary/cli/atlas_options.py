"""Options and helpers shared by the RIPE Atlas commands (schedule, fetch, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from rootcanary.backends.atlas.campaign import AtlasCampaign
from rootcanary.backends.atlas.client import (
    PUBLIC_SERVER,
    AtlasClient,
    Endpoint,
    RetryPolicy,
)
from rootcanary.backends.atlas.keys import find_key, require_key
from rootcanary.console import console
from rootcanary.errors import ConfigError

KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help=(
            "RIPE Atlas API key. Prefer RIPE_ATLAS_CREATE_KEY or the config file "
            "(~/.config/rootcanary/atlas.toml): a --key shows in the process list."
        ),
        show_default=False,
    ),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="ROOTCANARY_ATLAS_SERVER",
        help=(
            "API host[:port], spoken to over HTTPS (default atlas.ripe.net; a "
            "campaign remembers the server it was scheduled on)."
        ),
        show_default=False,
    ),
]
CaFileOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-file",
        envvar="ROOTCANARY_ATLAS_CA_FILE",
        help="PEM file of the CA certificates to trust for the API.",
        show_default=False,
    ),
]
CampaignArg = Annotated[
    Path,
    typer.Argument(
        help="Campaign directory (holds manifest.json).", show_default=False
    ),
]


def endpoint(
    server: str | None,
    ca_file: Path | None,
    campaign: AtlasCampaign | None = None,
) -> Endpoint:
    """The API endpoint: the options, else the campaign's, else the public one."""
    extra: dict[str, Any] = campaign.manifest.extra if campaign else {}
    host = (server or extra.get("server") or PUBLIC_SERVER).strip()
    if "/" in host or not host:
        raise ConfigError(f"--server: give host[:port], not a URL: {host!r}")
    ca_text = ca_file or extra.get("ca_file")
    ca = Path(ca_text) if ca_text else None
    if ca is not None and not ca.is_file():
        raise ConfigError(f"--ca-file: no such file: {ca}")
    return Endpoint(host, ca)


def policy_of(campaign: AtlasCampaign | None) -> RetryPolicy:
    stored = campaign.manifest.extra.get("retry") if campaign else None
    if not isinstance(stored, dict):
        return RetryPolicy()
    return RetryPolicy(
        retries=int(stored.get("retries", 6)),
        backoff=float(stored.get("backoff", 2.0)),
        backoff_max=float(stored.get("backoff_max", 120.0)),
        timeout=float(stored.get("timeout", 60.0)),
    )


def client(
    where: Endpoint,
    key: str | None,
    policy: RetryPolicy,
    required: bool,
) -> AtlasClient:
    """A client with the key found (``--key``, environment, config file)."""
    found = require_key(key) if required else find_key(key)
    if found is not None:
        console.detail(escape(f"API key from {found.source}"))
    return AtlasClient(where, found.key if found else None, policy)
