"""Classifier speed and memory against a plain ripe.atlas.sagan loop.

Writes a synthetic RIPE Atlas campaign (real wire-format answers: valid,
bogus, sentinel and whoami names; single results and resultsets; timeouts and
SERVFAILs; see rootcanary.readers.synthetic), then on one core:

1. classifies it with rootcanary (files to Classification, every state);
2. runs the reference over the same files: json.loads + sagan DnsResult, per
   response header.return_code and header.ad, nothing else;
3. prints responses per second of both and the ratio (target: 10x or more);
4. measures peak memory (max RSS of a fresh process) for two inputs that
   differ four times in responses but cover the same vantage points and
   buckets, and for one with twice the vantage points, to show that memory
   follows vantage points times buckets and not responses.

    .venv/bin/python bench/classify_bench.py                 # 1,000,000 responses
    .venv/bin/python bench/classify_bench.py --responses 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ripe.atlas.sagan import DnsResult, Result

from rootcanary.classify import classify_files
from rootcanary.observation import Tally
from rootcanary.readers.sources import gather
from rootcanary.readers.synthetic import ROLES, write_campaign

# Mean resolvers per probe in the synthetic campaign (1, 1, 2, 2, 3).
_RESOLVERS = 1.8

_CHILD = """
import sys, time
from pathlib import Path
from rootcanary.classify import classify_files
from rootcanary.observation import Tally
from rootcanary.readers.sources import gather
inputs = gather([Path(sys.argv[1])])
start = time.perf_counter()
result = classify_files(inputs.files, Tally(), roles=inputs.roles, zone=inputs.zone)
took = time.perf_counter() - start
# VmHWM is this process's own peak RSS; ru_maxrss would include the
# parent's, carried over the fork and exec.
status = Path("/proc/self/status").read_text()
peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
print(result.responses, len(result.buckets), peak, took)
"""


def sagan_loop(files: list[Path]) -> int:
    """The reference: what a plain sagan script does to get rcode and AD."""
    responses = 0
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                result = DnsResult(
                    json.loads(line),
                    on_error=Result.ACTION_IGNORE,
                    on_malformation=Result.ACTION_IGNORE,
                )
                for response in result.responses:
                    abuf = response.abuf  # sagan parses the abuf here
                    if abuf is not None:
                        header = abuf.header
                        _ = (header.return_code, header.ad)
                # A top-level timeout leaves sagan's responses empty.
                responses += len(result.responses) or 1
    return responses


def probes_for(responses: int, rounds: int) -> int:
    return max(1, round(responses / (rounds * len(ROLES) * _RESOLVERS)))


def peak_memory(directory: Path) -> tuple[int, int, int, float]:
    """(responses, cells, max RSS in KiB, seconds) of a fresh classify run."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2]), float(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=4, help="hourly buckets")
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz")
    parser.add_argument("--keep", type=Path, help="write the campaign here")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        probes = probes_for(args.responses, args.rounds)
        started = time.perf_counter()
        campaign = write_campaign(
            base / "main", probes, args.rounds, gzip_files=args.gzip
        )
        print(
            f"campaign: {campaign.responses:,} responses in {campaign.results:,} "
            f"results, {probes:,} probes, {args.rounds} hourly rounds "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )
        inputs = gather([campaign.directory])

        # Ours before and after the reference, best of the two: the shorter
        # run is the one that machine noise can distort.
        ours = float("inf")
        counted = 0
        for turn in range(2):
            started = time.perf_counter()
            result = classify_files(
                inputs.files, Tally(), roles=inputs.roles, zone=inputs.zone
            )
            ours = min(ours, time.perf_counter() - started)
            if turn == 0:
                started = time.perf_counter()
                counted = sagan_loop(list(inputs.files))
                theirs = time.perf_counter() - started
        assert counted == campaign.responses == result.responses
        ours_rate, theirs_rate = counted / ours, counted / theirs
        print(
            f"rootcanary classify: {ours_rate:12,.0f} responses/s "
            f"({ours:.1f} s, {len(result.buckets):,} vantage-point buckets)"
        )
        print(f"sagan rcode+AD loop: {theirs_rate:12,.0f} responses/s ({theirs:.1f} s)")
        print(f"ratio: {ours_rate / theirs_rate:.1f}x (target 10x)")

        # Memory: same vantage points and buckets, four times the responses
        # (rounds every 15 minutes instead of hourly), then twice the probes.
        small_probes = probes_for(min(args.responses, 200_000), args.rounds)
        runs = [
            ("small", small_probes, args.rounds, 3600),
            ("4x responses", small_probes, args.rounds * 4, 900),
            ("2x vantage points", small_probes * 2, args.rounds, 3600),
        ]
        print("peak memory (fresh process, peak RSS):")
        for label, count, rounds, interval in runs:
            target = base / label.replace(" ", "-")
            write_campaign(target, count, rounds, interval=interval)
            responses, cells, peak, took = peak_memory(target)
            print(
                f"  {label:18} {responses:>10,} responses {cells:>9,} buckets "
                f"{peak / 1024:8.1f} MiB  ({responses / took:,.0f} responses/s)"
            )


if __name__ == "__main__":
    main()
