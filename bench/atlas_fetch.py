"""How fast fetch stores Atlas results, against plain JSON + gzip writing.

Both sides write the same 20,000 DNS results (two resolvers each, real-size
abufs) to gzip JSON lines in the same run; fetch also digests every result
for de-duplication, fsyncs and renames each part, and on the second pass
re-reads the overlap and drops the half it already has. Prints seconds and
the ratio fetch / reference (lower is better). No network: the results come
from an in-memory client.

    .venv/bin/python bench/atlas_fetch.py
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rootcanary.backends.atlas.campaign import AtlasCampaign
from rootcanary.backends.atlas.fetch import Fetcher
from rootcanary.campaign import Manifest

COUNT = 20_000
PROBES = 1_000
START = 1_800_000_000


def make_results() -> list[dict[str, Any]]:
    abuf = base64.b64encode(os.urandom(120)).decode()
    out = []
    for index in range(COUNT):
        stamp = START + (index // PROBES) * 60 + index % 3
        out.append(
            {
                "fw": 5080,
                "msm_id": 1,
                "prb_id": 1000 + index % PROBES,
                "timestamp": stamp,
                "type": "dns",
                "af": 4,
                "from": "198.51.100.7",
                "resultset": [
                    {
                        "time": stamp,
                        "subid": sub + 1,
                        "submax": 2,
                        "dst_addr": "192.168.1.1",
                        "result": {"rt": 12.5, "size": 120, "abuf": abuf, "ID": index},
                    }
                    for sub in range(2)
                ],
            }
        )
    return out


class MemoryClient:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def results(self, msm_id: int, start: int | None, stop: int | None) -> list[Any]:
        return [
            r
            for r in self.rows
            if (start is None or r["timestamp"] >= start)
            and (stop is None or r["timestamp"] <= stop)
        ]


def reference(rows: list[dict[str, Any]], directory: Path) -> float:
    began = time.perf_counter()
    with gzip.open(directory / "plain.jsonl.gz", "wt") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")
    return time.perf_counter() - began


def ours(rows: list[dict[str, Any]], directory: Path) -> float:
    manifest = Manifest(
        name="bench",
        backend="atlas",
        created="2027-01-15T08:00:00Z",
        entries=[{"slot": 0, "request": 0, "position": 0, "role": "valid", "af": 4,
                  "msm_id": 1, "created": "2027-01-15T08:00:00Z"}],
        extra={"tag": "rc-bench-0", "requests": [{"start_time": START}]},
    )  # fmt: skip
    campaign = AtlasCampaign(directory, manifest)
    half = rows[: COUNT // 2]
    span = (rows[-1]["timestamp"] - START) // 2 + 3600
    first = Fetcher(campaign, MemoryClient(half), window=span, clock=lambda: START)
    second = Fetcher(campaign, MemoryClient(rows), overlap=span, window=span,
                     clock=lambda: START + span)  # fmt: skip
    began = time.perf_counter()
    first.fetch(manifest.entries)
    second.fetch(manifest.entries)  # re-reads the first half, keeps the rest
    return time.perf_counter() - began


def main() -> None:
    rows = make_results()
    best_ref = best_ours = float("inf")
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            best_ref = min(best_ref, reference(rows, Path(tmp)))
        with tempfile.TemporaryDirectory() as tmp:
            best_ours = min(best_ours, ours(rows, Path(tmp)))
    print(f"reference (json + gzip, {COUNT} results): {best_ref:.3f} s")
    print(f"fetch (digest, dedupe, atomic parts, re-read overlap): {best_ours:.3f} s")
    print(f"ratio fetch / reference: {best_ours / best_ref:.2f}")


if __name__ == "__main__":
    main()
