"""Synthetic RIPE Atlas campaigns with real wire-format answers.

For benchmarks and tests: probes with one to three resolvers each, every
resolver with a behaviour (a validator holding KSK-2024, one still on
KSK-2017, one not sentinel-aware, a non-validator, one with a broken chain),
answering the campaign's test names the way such a resolver would, in the
shape the RIPE Atlas results API returns (``resultset`` for probes with
several resolvers, a single ``result`` otherwise), with timeouts and unrelated
SERVFAILs mixed in. Answers are real DNS messages built with dnspython, with
RRSIGs and EDNS; the query label is ``$r``-style cache-busting hex.

Each measurement is written to ``results/<msm>.jsonl`` (``.jsonl.gz`` with
``gzip=True``) beside a manifest that maps measurements to roles, as the Atlas
backend does.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from rootcanary import names
from rootcanary.campaign import Manifest, now_iso, save_manifest

ZONE = "canary.test."
KSK_2017, KSK_2024 = 20326, 38696
_LABEL = "0123456789abcdef"  # placeholder, replaced per query (same length)
_SIG = "A" * 86 + "=="  # 64 bytes, an ECDSA P-256 signature's size

#: Roles measured, one RIPE Atlas measurement each.
ROLES: tuple[str, ...] = (
    "valid",
    "bogus-sig",
    f"is-ta:{KSK_2017}",
    f"not-ta:{KSK_2017}",
    f"is-ta:{KSK_2024}",
    f"not-ta:{KSK_2024}",
    "whoami",
)

#: Resolver behaviours, their weights and their sentinel answers: Y (the
#: answer) or S (SERVFAIL); a validator's bogus answers are SERVFAIL with
#: EDE 6, and "stale" fails every name with EDE 9 (see _answer).
PROFILES: dict[str, tuple[float, dict[str, str]]] = {
    # RFC 8509 Vnew for 38696, Vold for 20326: rolled, old key dropped.
    "ksk2024": (0.45, {"is-ta:20326": "S", "not-ta:20326": "Y",
                       "is-ta:38696": "Y", "not-ta:38696": "S"}),
    # Both keys trusted (during the rollover).
    "both": (0.15, {"is-ta:20326": "Y", "not-ta:20326": "S",
                    "is-ta:38696": "Y", "not-ta:38696": "S"}),
    "vind": (0.15, {}),  # validating, not sentinel-aware: Vind for both
    "nonv": (0.15, {}),  # not validating: nonV
    "stale": (0.10, {}),  # KSK-2017 only after the roll: valid fails (EDE 9)
}  # fmt: skip


@dataclass(frozen=True)
class Campaign:
    """What :func:`write_campaign` wrote."""

    directory: Path
    files: tuple[Path, ...]
    results: int
    responses: int
    measurements: dict[str, str]  # msm id -> role


def _templates(zone: str) -> dict[tuple[str, str], tuple[bytes, int]]:
    """Wire templates per (role, outcome) and the qname label's offset."""
    out = {}
    for role in ROLES:
        qname = _qname(role, zone, _LABEL)
        qtype = "TXT" if role == "whoami" else "A"
        query = dns.message.make_query(qname, qtype, want_dnssec=True, payload=1232)
        for outcome in ("Y", "YA", "S", "S9", "SN"):
            response = dns.message.make_response(query)
            response.flags |= dns.flags.RA
            if outcome.startswith("Y"):
                if outcome == "YA":
                    response.flags |= dns.flags.AD
                rdtype, rdata = (
                    ("TXT", '"192.0.2.53"') if qtype == "TXT" else ("A", "192.0.2.1")
                )
                response.answer = [
                    dns.rrset.from_text(qname, 300, "IN", rdtype, rdata),
                    dns.rrset.from_text(
                        qname,
                        300,
                        "IN",
                        "RRSIG",
                        f"{rdtype} 13 {len(qname.split('.')) - 1} 300 "
                        f"20270101000000 20261201000000 4711 {zone} {_SIG}",
                    ),
                ]
            else:
                response.set_rcode(dns.rcode.SERVFAIL)
                code = {
                    "S": dns.edns.EDECode.DNSSEC_BOGUS,
                    "S9": dns.edns.EDECode.DNSKEY_MISSING,
                }.get(outcome)
                options: list[dns.edns.Option] = (
                    [] if code is None else [dns.edns.EDEOption(code)]
                )
                response.use_edns(0, dns.flags.DO, 1232, options=options)
            packet = response.to_wire()
            out[(role, outcome)] = (packet, packet.find(_LABEL.encode()))
    return out


def _qname(role: str, zone: str, label: str) -> str:
    if role == "valid":
        return names.valid_name(zone, label)
    if role == "whoami":
        return names.whoami_name(zone, label)
    if names.is_bogus_role(role):
        return names.bogus_name(zone, role[6:], label)
    kind, tag = names.parse_sentinel_role(role) or ("is-ta", 0)
    return names.sentinel_name(zone, kind, tag, label)


def _answer(profile: str, role: str, rng: random.Random) -> str | None:
    """The outcome code of one query, or None for a timeout."""
    roll = rng.random()
    if roll < 0.02:
        return None
    if roll < 0.03:
        return "SN"  # an unrelated SERVFAIL without EDE
    validating = profile != "nonv"
    if profile == "stale" and role != "whoami":
        return "S9"
    if role == "whoami":
        return "Y"
    if names.is_bogus_role(role):
        return "S" if validating else "Y"
    if role == "valid":
        return "YA" if validating else "Y"
    table = PROFILES[profile][1]
    found = table.get(role, "Y")
    return "YA" if found == "Y" and validating else found


def _resolvers(rng: random.Random, probe: int) -> list[tuple[str, str]]:
    count = rng.choice((1, 1, 2, 2, 3))
    names_ = list(PROFILES)
    weights = [PROFILES[n][0] for n in names_]
    out = []
    for index in range(count):
        address = f"10.{probe >> 8 & 255}.{probe & 255}.{index + 1}"
        out.append((address, rng.choices(names_, weights)[0]))
    return out


def results(
    probes: int = 100,
    rounds: int = 4,
    *,
    zone: str = ZONE,
    start: int = 1791676800,  # 2026-10-11T00:00:00Z, the day of the KSK-2024 roll
    interval: int = 3600,
    first_msm: int = 90000001,
    seed: int = 8509,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(msm_id, raw result)`` pairs, round by round, probe by probe."""
    rng = random.Random(seed)
    templates = _templates(zone)
    vantage = {p: _resolvers(rng, p) for p in range(1, probes + 1)}
    msms = {role: first_msm + index for index, role in enumerate(ROLES)}
    for round_no in range(rounds):
        for probe, resolvers in vantage.items():
            for role in ROLES:
                when = start + round_no * interval + rng.randrange(interval // 2)
                entries = [
                    _entry(templates, role, address, profile, when, rng)
                    for address, profile in resolvers
                ]
                yield msms[role], _result(msms[role], probe, when, entries)


def _entry(
    templates: dict[tuple[str, str], tuple[bytes, int]],
    role: str,
    address: str,
    profile: str,
    when: int,
    rng: random.Random,
) -> dict[str, Any]:
    outcome = _answer(profile, role, rng)
    entry: dict[str, Any] = {"af": 4, "dst_addr": address, "proto": "UDP"}
    if outcome is None:
        entry["error"] = {"timeout": 5000}
    else:
        packet, at = templates[(role, outcome)]
        label = b"%016x" % rng.getrandbits(64)
        wire = (
            rng.getrandbits(16).to_bytes(2, "big")
            + packet[2:at]
            + label
            + packet[at + 16 :]
        )
        entry["result"] = {
            "ANCOUNT": int.from_bytes(wire[6:8], "big"),
            "ARCOUNT": int.from_bytes(wire[10:12], "big"),
            "ID": int.from_bytes(wire[0:2], "big"),
            "NSCOUNT": 0,
            "QDCOUNT": 1,
            "abuf": b64encode(wire).decode(),
            "rt": round(rng.uniform(0.5, 80.0), 3),
            "size": len(wire),
        }
    entry["src_addr"] = "10.0.0.2"
    entry["time"] = when
    return entry


def _result(
    msm: int, probe: int, when: int, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "fw": 5020,
        "lts": 17,
        "msm_id": msm,
        "msm_name": "Tdig",
        "prb_id": probe,
        "timestamp": when,
        "type": "dns",
        "group_id": msm,
        "from": f"192.0.2.{probe % 250 + 1}",
    }
    if len(entries) == 1:
        entry = entries[0]
        base.update(
            {k: v for k, v in entry.items() if k not in ("time", "src_addr")},
            src_addr=entry["src_addr"],
        )
        return base
    for subid, entry in enumerate(entries, 1):
        entry["subid"], entry["submax"] = subid, len(entries)
    base["resultset"] = entries
    return base


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=1)
    return path.open("w", encoding="utf-8")


def write_campaign(
    directory: Path,
    probes: int = 100,
    rounds: int = 4,
    *,
    gzip_files: bool = False,
    **options: Any,
) -> Campaign:
    """Write a campaign directory: manifest plus one results file per msm."""
    zone = options.get("zone", ZONE)
    target = directory / "results"
    target.mkdir(parents=True, exist_ok=True)
    paths: dict[int, Path] = {}
    count = responses = 0
    with contextlib.ExitStack() as stack:
        handles: dict[int, IO[str]] = {}
        for msm, result in results(probes, rounds, **options):
            handle = handles.get(msm)
            if handle is None:
                suffix = ".jsonl.gz" if gzip_files else ".jsonl"
                paths[msm] = target / f"{msm}{suffix}"
                handle = handles[msm] = stack.enter_context(_open(paths[msm]))
            handle.write(json.dumps(result, separators=(",", ":")) + "\n")
            count += 1
            responses += len(result.get("resultset", ())) or 1
    first = options.get("first_msm", 90000001)
    roles = {str(first + index): role for index, role in enumerate(ROLES)}
    save_manifest(
        directory,
        Manifest(
            name=directory.name,
            backend="atlas",
            created=now_iso(),
            roles=roles,
            extra={"zone": zone, "synthetic": True},
        ),
    )
    return Campaign(
        directory=directory,
        files=tuple(sorted(paths.values())),
        results=count,
        responses=responses,
        measurements=roles,
    )
