"""Benchmark: the proxy prober driving 1,000 exit sessions at a time.

The gateway stand-in runs in a process of its own with synthetic exits (it
answers 200 itself, no DNS, no upstream), so the numbers are the prober's.
Each measurement runs in a fresh process, so its peak RSS is its own:

- prober, N sessions and 4N sessions, 1,000 at a time: sessions per second
  and peak RSS; flat memory means the 4N run peaks about where the N run does;
- reference: the same requests as bare aiohttp GETs through the same gateway
  at the same concurrency, no logging, no outcomes (run first and last); the
  ratio says what the prober's bookkeeping costs (1.00 = nothing).

Usage: .venv/bin/python bench/proxy_prober.py [--sessions 1000] [--concurrency 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.40.250"
PASSWORD = "bench-password"
ENV = "ROOTCANARY_BENCH_PASSWORD"


def start_gateway() -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, ENV: PASSWORD}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "rootcanary.backends.proxy_standin",
            "--listen", f"{HOST}:0", "--exit", "de:synthetic",
            "--password-env", ENV,
        ],
        stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline().decode().split()
    if not line or line[0] != "listening":
        process.kill()
        raise SystemExit("the gateway stand-in did not start")
    return process, line[1]


def worker(mode: str, sessions: int, concurrency: int, gateway: str) -> None:
    from rootcanary.backends.proxy import Credentials, Prober
    from rootcanary.plan import plan_tests
    from rootcanary.scenario.proxy import ProxySpec
    from rootcanary.scenario.tests import TestsSpec
    from rootcanary.secrets import Secret

    tests = plan_tests(
        TestsSpec(zone="canary.test.", bogus=("sig",), keytags=(20326, 38696))
    )
    spec = ProxySpec(
        gateway=f"http://{gateway}",
        params=(("customer", "c_rootcanary"), ("zone", "residential")),
        password_env=ENV,
        concurrency=concurrency,
        rate=0,
        timeout=60,
        retries=0,
    )
    creds = Credentials(Secret(PASSWORD))
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "requests.jsonl"
        with out_path.open("w") as out:
            prober = Prober(spec, creds, tests, out)
            started = time.perf_counter()
            if mode == "prober":
                stats = asyncio.run(prober.run(sessions))
                requests, failed = stats.requests, stats.failed
            else:
                requests, failed = asyncio.run(raw(prober, sessions))
            elapsed = time.perf_counter() - started
        lines = sum(1 for _ in out_path.open())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    json.dump(
        {
            "mode": mode,
            "sessions": sessions,
            "requests": requests,
            "failed": failed,
            "lines": lines,
            "seconds": elapsed,
            "peak_mib": peak_kib / 1024,
        },
        sys.stdout,
    )


async def raw(prober: object, sessions: int) -> tuple[int, int]:
    """The same request pattern, bare: one worker per concurrent session."""
    import aiohttp

    from rootcanary.backends.proxy import Prober, plan_session, proxy_authorization

    assert isinstance(prober, Prober)
    counter = iter(range(sessions))
    done = failed = 0
    connector = aiohttp.TCPConnector(limit=prober.spec.concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one() -> None:
            nonlocal done, failed
            for index in counter:
                plan = plan_session(index, prober.tests, prober.spec)
                auth = proxy_authorization(prober.spec, plan, prober.creds)
                for fetch in plan.fetches:
                    async with client.get(
                        fetch.url,
                        proxy=prober.spec.gateway,
                        headers={"Proxy-Authorization": auth},
                    ) as response:
                        await response.read()
                        done += 1
                        failed += response.status != 200

        await asyncio.gather(*(one() for _ in range(prober.spec.concurrency)))
    return done, failed


def run(mode: str, sessions: int, concurrency: int, gateway: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", mode, "--sessions", str(sessions),
         "--concurrency", str(concurrency), "--gateway", gateway],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--worker", choices=("prober", "raw"))
    parser.add_argument("--gateway")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.worker:
        worker(args.worker, args.sessions, args.concurrency, args.gateway)
        return
    gateway_process, gateway = start_gateway()
    try:
        small, large = args.sessions, args.sessions * 4
        # The reference runs first and last, so a warming or tiring gateway
        # does not favour either side.
        results = [
            run("raw", small, args.concurrency, gateway),
            run("prober", small, args.concurrency, gateway),
            run("prober", large, args.concurrency, gateway),
            run("raw", small, args.concurrency, gateway),
        ]
    finally:
        gateway_process.terminate()
        gateway_process.wait(timeout=30)
    print(f"{'run':<8} {'sessions':>8} {'requests':>8} {'failed':>6} "
          f"{'seconds':>8} {'sessions/s':>10} {'peak MiB':>9}")  # fmt: skip
    for r in results:
        print(
            f"{r['mode']:<8} {r['sessions']:>8} {r['requests']:>8} {r['failed']:>6} "
            f"{r['seconds']:>8.2f} {r['sessions'] / r['seconds']:>10.0f} "
            f"{r['peak_mib']:>9.1f}"
        )
    before, prober_small, prober_large, after = results
    reference = (before["seconds"] + after["seconds"]) / 2
    speed = (prober_small["sessions"] / prober_small["seconds"]) / (
        before["sessions"] / reference
    )
    print(f"prober speed / bare aiohttp at {args.concurrency} concurrent: {speed:.2f}")
    print(
        f"peak memory, {large} vs {small} sessions: "
        f"{prober_large['peak_mib'] / prober_small['peak_mib']:.2f} (1.00 = flat)"
    )
    assert prober_large["lines"] == prober_large["requests"]


if __name__ == "__main__":
    main()
