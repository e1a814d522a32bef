"""Replay run directories for the report tests, written the way a run leaves them.

The layout and replay.json follow briefs/replay.md, the query log lines
briefs/querylog.md, the observations the local backend's own records. Each
resolver behaves as its configuration implies during a KSK rollover replay
(publish at 0 s, roll at 180 s, revoke at 300 s, remove at 420 s, probed every
5 s until 540 s):

- unbound, kresd: managed anchors (RFC 5011): trust the new key after the
  60 s add hold-down, stay secure through the roll, drop the old key once it
  is revoked; kresd restarts at 30 s;
- bind-stale: a static old anchor: bogus from the roll on, and it queries the
  root's DNSKEY set every 2 s from then (the flood the IMC 2019 study saw);
- pdns-static: a static old anchor and no RFC 8509 support (Vind): bogus
  from the roll;
- unbound-off: validation off: insecure throughout (nonV).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rootcanary import names
from rootcanary.campaign import Manifest, save_manifest

START = datetime(2026, 12, 3, 18, 0, 0, tzinfo=UTC)
OLD, NEW, REVOKED = 1234, 5678, 1362
PHASES = (("start", 0.0), ("publish", 0.0), ("roll", 180.0), ("revoke", 300.0),
          ("remove", 420.0))  # fmt: skip
DURATION = 540.0
INTERVAL = 5.0
HOLDDOWN = 60.0
ZONE = "canary.test."
ROLES = ("valid", "bogus-sig", f"is-ta:{OLD}", f"not-ta:{OLD}", f"is-ta:{NEW}",
         f"not-ta:{NEW}")  # fmt: skip
HOSTILE = '<img src=x onerror="alert(1)">&amp;'
SCENARIO = """name = "ksk-replay-test"

[rollover]
probe_interval = "5s"

[[rollover.phase]]
state = "publish"
at = "0s"
# a comment with markup: </pre><script>alert(3)</script>
"""


@dataclass(frozen=True)
class Resolver:
    name: str
    implementation: str
    variant: str
    address: str
    managed: bool  # RFC 5011: picks up the new key, drops the revoked one
    validates: bool = True
    sentinel: bool = True  # RFC 8509 support
    trusts_new_after: float = HOLDDOWN + 10
    drops_old_after: float = 310.0
    signal: str = "ta"  # RFC 8145: "ta" query names, "edns" option, "" none

    @property
    def breaks(self) -> bool:
        return self.validates and not self.managed


def resolvers(hostile: bool = False) -> tuple[Resolver, ...]:
    return (
        Resolver("unbound", "unbound", "validating", "127.0.1.1", managed=True),
        Resolver(
            HOSTILE if hostile else "bind-stale",
            "bind9",
            "stale-anchor",
            "127.0.1.2",
            managed=False,
        ),
        Resolver(
            "kresd",
            "knot-resolver",
            "validating",
            "127.0.1.3",
            managed=True,
            trusts_new_after=HOLDDOWN + 15,
            drops_old_after=315.0,
            signal="edns",
        ),
        Resolver(
            "pdns-static",
            "pdns-recursor",
            "static-anchor",
            "127.0.1.4",
            managed=False,
            sentinel=False,
            signal="",
        ),
        Resolver(
            "unbound-off",
            "unbound",
            "no-validation",
            "127.0.1.5",
            managed=False,
            validates=False,
            signal="",
        ),
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(offset: float) -> datetime:
    return START + timedelta(seconds=offset)


def anchors(resolver: Resolver, offset: float) -> tuple[int, ...]:
    """The key tags the resolver trusts ``offset`` seconds into the run."""
    if not resolver.managed:
        return (OLD,)
    held = [OLD] if offset < resolver.drops_old_after else []
    if offset >= resolver.trusts_new_after:
        held.append(NEW)
    return tuple(held)


def answer(resolver: Resolver, role: str, offset: float) -> tuple[str, bool, list[int]]:
    """(rcode, AD, EDE) of one probe."""
    if not resolver.validates:
        return "NOERROR", False, []
    if resolver.breaks and offset >= 180.0:
        return "SERVFAIL", False, [9]  # RFC 8914: DNSKEY missing
    if role == "valid":
        return "NOERROR", True, []
    if role == "bogus-sig":
        return "SERVFAIL", False, [6]
    kind, tag = names.parse_sentinel_role(role) or ("", 0)
    if not resolver.sentinel:
        return "NOERROR", True, []
    trusted = tag in anchors(resolver, offset)
    if (kind == "is-ta") == trusted:
        return "NOERROR", True, []
    return "SERVFAIL", False, []


def _qname(role: str, label: str) -> str:
    if role == "valid":
        return names.valid_name(ZONE, label)
    if role == "bogus-sig":
        return names.bogus_name(ZONE, "sig", label)
    kind, tag = names.parse_sentinel_role(role) or ("is-ta", 0)
    return names.sentinel_name(ZONE, kind, tag, label)


def observations(
    resolver: Resolver, duration: float = DURATION
) -> Iterator[dict[str, Any]]:
    rounds = int(duration // INTERVAL)
    for number in range(rounds):
        for index, role in enumerate(ROLES):
            offset = number * INTERVAL + 0.05 + index * 0.01
            rcode, ad, ede = answer(resolver, role, offset)
            label = f"r{number:04d}x{index}"
            yield {
                "platform": "local",
                "measurement": role,
                "probe": resolver.name,
                "resolver": resolver.address,
                "af": 4,
                "time": iso(at(offset)),
                "qname": _qname(role, label),
                "qtype": "A",
                "rcode": rcode,
                "ad": ad,
                "answers": ["192.0.2.1"] if rcode == "NOERROR" else [],
                "ede": ede,
                "error": None,
                "role": role,
                "rtt_ms": 1.5,
                "transport": "udp",
                "attempts": 1,
            }


def _log_line(src: str, offset: float, qname: str, qtype: str, **extra: Any) -> str:
    record = {
        "time": iso(at(offset)),
        "transport": "udp",
        "src": src,
        "sport": 40000,
        "dst": "127.0.2.1",
        "dport": 53,
        "id": 4711,
        "qname": qname,
        "qtype": qtype,
        "qclass": "IN",
        "opcode": "QUERY",
        "rd": False,
        "cd": False,
        "edns": 0,
        "bufsize": 1232,
        "do": True,
        "opts": [],
        "edns_key_tag": extra.get("edns_key_tag"),
        "ta": extra.get("ta"),
        "rcode": "NOERROR",
        "size": 600,
        "tc": False,
        "zone": ".",
    }
    return json.dumps(record, separators=(",", ":"))


def query_log(
    all_resolvers: tuple[Resolver, ...], duration: float = DURATION
) -> list[tuple[float, str]]:
    """(offset, line) of every query the root saw, unsorted."""
    lines: list[tuple[float, str]] = []
    for resolver in all_resolvers:
        if not resolver.validates:
            continue
        offset = 1.0 + int(resolver.address.rsplit(".", 1)[1]) * 0.1
        while offset < duration:
            tags = list(anchors(resolver, offset))
            extra: dict[str, Any] = {}
            if resolver.signal == "ta":
                label = "_ta-" + "-".join(f"{t:04x}" for t in tags) + "."
                lines.append(
                    (
                        offset,
                        _log_line(resolver.address, offset, label, "NULL", ta=tags),
                    )
                )
            elif resolver.signal == "edns":
                extra["edns_key_tag"] = tags
            lines.append(
                (offset, _log_line(resolver.address, offset, ".", "DNSKEY", **extra))
            )
            flooding = resolver.breaks and offset >= 180.0
            offset += 2.0 if flooding else 20.0
    return lines


def dnskey_rates(
    lines: list[tuple[float, str]], duration: float = DURATION
) -> list[dict[str, Any]]:
    bounds = [(PHASES[i][0], PHASES[i][1], PHASES[i + 1][1] if i + 1 < len(PHASES)
               else duration) for i in range(1, len(PHASES))]  # fmt: skip
    counts: dict[tuple[str, str], int] = {}
    for offset, line in lines:
        record = json.loads(line)
        if record["qtype"] != "DNSKEY":
            continue
        for phase, low, high in bounds:
            if low <= offset < high:
                key = (record["src"], phase)
                counts[key] = counts.get(key, 0) + 1
    out = []
    for (src, phase), queries in sorted(counts.items()):
        low, high = next((lo, hi) for p, lo, hi in bounds if p == phase)
        out.append(
            {
                "src": src,
                "phase": phase,
                "queries": queries,
                "seconds": high - low,
                "per_minute": round(60 * queries / (high - low), 2),
            }
        )
    return out


def keytag_sets(all_resolvers: tuple[Resolver, ...]) -> list[dict[str, Any]]:
    out = []
    for resolver in all_resolvers:
        if not resolver.validates or not resolver.signal:
            continue
        previous: tuple[int, ...] | None = None
        for step in range(int(DURATION)):
            held = anchors(resolver, float(step))
            if held != previous:
                out.append(
                    {"src": resolver.address, "time": iso(at(step)), "tags": list(held)}
                )
                previous = held
    return out


def verdict(resolver: Resolver, *, contradict: bool = False) -> dict[str, Any]:
    expected = "breaks" if resolver.breaks else "survives"
    outcome = "broke" if resolver.breaks else "survived"
    if contradict:
        outcome = "survived" if resolver.breaks else "broke"
    return {
        "resolver": resolver.name,
        "implementation": resolver.implementation,
        "variant": resolver.variant,
        "address": resolver.address,
        "expected": expected,
        "outcome": outcome,
        "ok": not contradict,
        "trusted_new_at": iso(at(resolver.trusts_new_after))
        if resolver.managed
        else None,
        "secure_through_roll": resolver.managed,
        "first_bogus_at": iso(at(180.0)) if resolver.breaks else None,
        "dropped_revoked_at": iso(at(resolver.drops_old_after))
        if resolver.managed
        else None,
        "notes": '</td><script>alert(2)</script> "quoted"' if contradict else "",
    }


def write_run(
    root: Path,
    *,
    hostile: bool = False,
    contradict: str | None = None,
    with_replay: bool = True,
    with_log: bool = True,
) -> Path:
    """A complete run directory under ``root``; returns its path."""
    crew = resolvers(hostile)
    campaign = root / "campaign"
    (campaign / "observations").mkdir(parents=True)
    with (campaign / "observations" / "local-20261203T180000Z.jsonl").open("w") as out:
        for resolver in crew:
            for record in observations(resolver):
                out.write(json.dumps(record) + "\n")
    save_manifest(
        campaign,
        Manifest(
            name="replay-campaign",
            backend="local",
            created="2026-12-03T18:00:00Z",
            scenario_path="scenarios/ksk-replay-test.toml",
            scenario_text=SCENARIO,
            roles={role: role for role in ROLES},
            entries=[{"started": "2026-12-03T18:00:00Z", "rounds": 108}],
            extra={"zone": ZONE},
        ),
    )
    (root / "server").mkdir()
    lines = query_log(crew)
    if with_log:
        with (root / "server" / "queries.jsonl").open("w") as out:
            for _, line in sorted(lines):
                out.write(line + "\n")
            out.write("{not json\n")
            out.write('{"time": "2026-12-03T18:00:01.000000Z"}\n')  # no src
    for resolver in crew:
        folder = root / resolver.name.replace("/", "_")
        if not hostile:
            folder.mkdir()
            (folder / f"{resolver.name}.log").write_text("started\n")
    if with_replay:
        summary = {
            "schema_version": 1,
            "scenario": {
                "name": "ksk-replay-test",
                "path": "scenarios/ksk-replay-test.toml",
                "text": SCENARIO,
            },
            "started": iso(START).replace(".000000", ""),
            "finished": iso(at(DURATION)).replace(".000000", ""),
            "parameters": {
                "probe_interval": INTERVAL,
                "holddown": HOLDDOWN,
                "refresh": 20,
                "dnskey_ttl": 60,
            },
            "keys": {
                "old": {"slot": "ksk", "tag": OLD, "revoked_tag": REVOKED},
                "new": {"slot": "ksk-next", "tag": NEW},
            },
            "phases": [
                {"state": state, "at": iso(at(offset)), "offset": offset}
                for state, offset in PHASES
            ],
            "restarts": [{"resolver": "kresd", "at": iso(at(30.0)), "offset": 30.0}],
            "verdicts": [verdict(r, contradict=r.name == contradict) for r in crew],
            "keytag_sets": keytag_sets(crew),
            "dnskey_rates": dnskey_rates(lines),
        }
        (root / "replay.json").write_text(json.dumps(summary, indent=2))
    return root
