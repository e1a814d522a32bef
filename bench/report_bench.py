"""What a report costs on top of classifying: time and memory.

Writes a synthetic RIPE Atlas campaign (rootcanary.readers.synthetic) with a
query log of our server inside it (``queries.jsonl``: many sources, a mix of
query types, RFC 8145 ``_ta-`` names and EDNS key-tag options, root DNSKEY
queries), then on one core, in the same run:

1. ``classify_files`` over the campaign: the reference, what ``rootcanary
   classify`` does;
2. ``build_report``: the same classification plus the query-log pass;
3. plots and HTML (``write_report``);
4. ``rootcanary.telemetry.telemetry`` over the query log alone: the reference
   for the query-log pass, which also counts DNSKEY queries and the key tags
   each source held per bucket.

It prints each time, the ratios report/classify and query-log pass/telemetry,
and the peak memory of a fresh ``rootcanary report`` for the query log and for
one four times longer (same sources, same hours): memory follows sources
times buckets, not lines.

    .venv/bin/python bench/report_bench.py
    .venv/bin/python bench/report_bench.py --responses 100000 --log-lines 200000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rootcanary.classify import classify_files
from rootcanary.classify.roles import role_map_for
from rootcanary.observation import Tally
from rootcanary.readers.sources import gather
from rootcanary.readers.synthetic import ROLES, write_campaign
from rootcanary.report import build_report, write_report
from rootcanary.telemetry import telemetry

_RESOLVERS = 1.8  # mean resolvers per synthetic probe
_START = 1791676800  # the synthetic campaign's first hour
_QTYPES = ("A", "AAAA", "DNSKEY", "DS", "NS", "NULL")

_CHILD = """
import sys
from pathlib import Path
from rootcanary.report import build_report, write_report
report = build_report(Path(sys.argv[1]))
write_report(report, Path(sys.argv[2]))
status = Path("/proc/self/status").read_text()
peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
print(report.query_log.lines, len(report.query_log.dnskey.sources), peak)
"""


def write_query_log(path: Path, lines: int, sources: int, hours: int) -> None:
    """Query-log lines (briefs/querylog.md) spread over ``hours``."""
    rng = random.Random(8145)
    addresses = [f"10.{i >> 8 & 255}.{i & 255}.53" for i in range(1, sources + 1)]
    tags = ([20326], [20326, 38696], [38696])
    step = hours * 3600 / lines
    with path.open("w", encoding="utf-8") as out:
        for number in range(lines):
            moment = _START + number * step
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
            qtype = rng.choice(_QTYPES)
            held = rng.choice(tags)
            ta = held if qtype == "NULL" else None
            qname = (
                "_ta-" + "-".join(f"{t:04x}" for t in held) + "."
                if ta
                else "."
                if qtype == "DNSKEY"
                else "example.canary.test."
            )
            record = {
                "time": f"{stamp}.{int(moment % 1 * 1e6):06d}Z",
                "transport": "udp",
                "src": rng.choice(addresses),
                "sport": rng.randrange(1024, 65536),
                "dst": "127.0.2.1",
                "dport": 53,
                "id": rng.randrange(65536),
                "qname": qname,
                "qtype": qtype,
                "qclass": "IN",
                "opcode": "QUERY",
                "rd": False,
                "cd": False,
                "edns": 0,
                "bufsize": 1232,
                "do": True,
                "opts": [14] if qtype == "DNSKEY" else [],
                "edns_key_tag": held if qtype == "DNSKEY" else None,
                "ta": ta,
                "rcode": "NOERROR",
                "size": 512,
                "tc": False,
                "zone": ".",
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


def peak_memory(directory: Path, output: Path) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), str(output)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=6, help="hourly buckets")
    parser.add_argument("--log-lines", type=int, default=500_000)
    parser.add_argument("--sources", type=int, default=2_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        probes = max(1, round(args.responses / (args.rounds * len(ROLES) * _RESOLVERS)))
        campaign = write_campaign(base / "c", probes, args.rounds)
        log = campaign.directory / "queries.jsonl"
        write_query_log(log, args.log_lines, args.sources, args.rounds)
        print(
            f"campaign: {campaign.responses:,} responses, {probes:,} probes, "
            f"{args.rounds} hours; query log: {args.log_lines:,} lines from "
            f"{args.sources:,} sources"
        )
        inputs = gather([campaign.directory])
        roles = role_map_for(inputs.roles, inputs.zone)

        best: dict[str, float] = {}

        def timed(label: str, work: object) -> None:
            started = time.perf_counter()
            assert callable(work)
            work()
            took = time.perf_counter() - started
            best[label] = min(best.get(label, took), took)

        # Interleaved, best of two: the shorter run is what noise distorts.
        for _ in range(2):
            timed(
                "classify",
                lambda: classify_files(inputs.files, Tally(), roles=roles),
            )
            timed("telemetry", lambda: telemetry([log], Tally()))
            timed("build", lambda: build_report(campaign.directory))
            built = build_report(campaign.directory)
            timed("write", lambda r=built: write_report(r, base / "report.html"))
        query_pass = best["build"] - best["classify"]
        total = best["build"] + best["write"]
        print(f"classify_files (reference): {best['classify']:7.2f} s")
        print(f"build_report:               {best['build']:7.2f} s")
        print(f"  of which the query log:   {query_pass:7.2f} s (estimate)")
        print(f"plots and HTML:             {best['write']:7.2f} s")
        print(f"telemetry alone (reference):{best['telemetry']:7.2f} s")
        print(f"ratio report/classify: {total / best['classify']:.2f}x")
        print(f"ratio query-log pass/telemetry: {query_pass / best['telemetry']:.2f}x")

        print("peak memory of a fresh report process:")
        for factor in (1, 4):
            target = base / f"x{factor}"
            copy = write_campaign(target, probes, args.rounds)
            write_query_log(
                copy.directory / "queries.jsonl",
                args.log_lines * factor,
                args.sources,
                args.rounds,
            )
            lines, sources, peak = peak_memory(target, target / "report.html")
            print(
                f"  {lines:>10,} log lines {sources:>6,} sources {peak / 1024:8.1f} MiB"
            )


if __name__ == "__main__":
    main()
