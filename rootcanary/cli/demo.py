"""``rootcanary demo``: the whole pipeline against the local testbed."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rootcanary.cli.common import guarded
from rootcanary.console import console
from rootcanary.demo import DEFAULT_SCENARIO, DemoResult, run_demo
from rootcanary.errors import RootCanaryError
from rootcanary.scenario import load_scenario


class DemoFormat(StrEnum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @guarded
    def demo(
        scenario_path: Annotated[
            Path,
            typer.Argument(help="A testbed scenario (default: scenarios/demo.toml)."),
        ] = DEFAULT_SCENARIO,
        run_dir: Annotated[
            Path | None,
            typer.Option(
                help="Where configs, logs and results go (default: runs/demo)."
            ),
        ] = None,
        output_format: Annotated[
            DemoFormat, typer.Option("--format", "-f", help="table or json on stdout.")
        ] = DemoFormat.table,
    ) -> None:
        """Bring up the testbed, probe each resolver, classify, compare, tear down.

        Exits 1 if any resolver's verdict contradicts its configuration.
        """
        scenario = load_scenario(scenario_path)
        console.info(f"bringing up the testbed of {scenario_path} ...")
        result = run_demo(scenario, run_dir)
        if output_format is DemoFormat.json:
            console.data(json.dumps(_as_json(result), indent=2))
        else:
            console.table(_as_table(result))
        console.info(
            f"observations: {result.campaign}; {result.seconds:.1f} s in all; "
            "the testbed is down again"
        )
        bad = [v for v in result.verdicts if not v.ok]
        for verdict in bad:
            console.error(f"{verdict.resolver}: {'; '.join(verdict.problems)}")
        if bad:
            raise RootCanaryError(
                f"{len(bad)} of {len(result.verdicts)} resolvers contradict their "
                "configuration"
            )
        console.success(f"all {len(result.verdicts)} resolvers behave as configured")


def _as_table(result: DemoResult) -> Table:
    table = Table(
        "resolver",
        "implementation",
        "variant",
        "validation",
        f"trust anchor {result.keytag}",
        "EDE",
        "whoami",
        "verdict",
        title="rootcanary demo: resolvers against a private signed root",
    )
    for v in result.verdicts:
        table.add_row(
            v.resolver,
            v.implementation,
            v.variant,
            v.validation,
            v.trust_anchor or "-",
            ",".join(str(code) for code in v.ede) or "-",
            ",".join(v.upstream) or "-",
            "as configured" if v.ok else "CONTRADICTS",
        )
    return table


def _as_json(result: DemoResult) -> dict[str, object]:
    return {
        "keytag": result.keytag,
        "ok": result.ok,
        "seconds": round(result.seconds, 3),
        "campaign": str(result.campaign),
        "resolvers": [
            {
                "resolver": v.resolver,
                "implementation": v.implementation,
                "variant": v.variant,
                "address": v.address,
                "validation": v.validation,
                "trust_anchor": v.trust_anchor,
                "ede": list(v.ede),
                "whoami": list(v.upstream),
                "expected": {
                    "validation": v.expected.validation,
                    "trust_anchor": v.expected.trust_anchor,
                },
                "ok": v.ok,
                "problems": list(v.problems),
            }
            for v in result.verdicts
        ],
    }
