"""Benchmark: rootcanary serve against NSD (static names) and PowerDNS LUA (whoami).

Everything runs in one go on loopback, as root (port 53):

* NSD serves the zones ``rootcanary zone export`` wrote, with the same
  number of server processes as our workers;
* PowerDNS Authoritative serves a signed LUA whoami record (the notes'
  reference for online answers);
* dnsperf sends the same query files, with DO, to each, for a bounded time.

It prints queries per second of each run and the ratios:
``static`` (ours / NSD, fixed names and unique names) and ``whoami`` (ours,
unique labels / PowerDNS LUA). Usage::

    .venv/bin/python bench/authserver_bench.py [--seconds 5] [--rounds 3] [--workers N]
        [--no-query-log] [--profile FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

REPO = Path(__file__).resolve().parent.parent
OURS, NSD, PDNS = "127.0.29.1", "127.0.29.2", "127.0.29.3"
ZONE = "canary.test."


def wait_ready(
    address: str, name: str, proc: subprocess.Popen[bytes], seconds: float = 60
) -> None:
    deadline = time.monotonic() + seconds
    query = dns.message.make_query(name, "SOA")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            reply = dns.query.udp(query, address, timeout=0.3)
            if reply.rcode() == dns.rcode.NOERROR:
                return
        time.sleep(0.1)
    raise SystemExit(f"{address} did not answer {name} SOA within {seconds}s")


@contextlib.contextmanager
def running(
    cmd: list[str], log: Path, **kw: object
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kw)  # type: ignore[call-overload]
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def dnsperf(address: str, datafile: Path, seconds: int) -> tuple[float, float]:
    """(queries per second, percent lost) of one bounded dnsperf run."""
    out = subprocess.run(
        [
            "dnsperf",
            "-s",
            address,
            "-d",
            str(datafile),
            "-l",
            str(seconds),
            "-c",
            "8",
            "-T",
            "1",
            "-q",
            "200",
            "-D",
            "-t",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = float(re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out).group(1))  # type: ignore[union-attr]
    return qps, lost


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its children (workers)."""
    import psutil

    user = system = 0.0
    try:
        proc = psutil.Process(pid)
        for p in (proc, *proc.children(recursive=True)):
            times = p.cpu_times()
            user += times.user
            system += times.system
    except psutil.Error:
        pass
    return user, system


def write_queries(directory: Path, count: int) -> dict[str, Path]:
    """The query mixes: fixed names, unique labels, whoami (unique / fixed)."""
    rng = secrets.SystemRandom()
    kinds = ["valid", "bogus-sig", "bogus-expired", "bogus-nosig", "bogus-wrongkey"]
    fixed = [
        f"valid.{ZONE} A",
        f"x1.valid.{ZONE} A",
        f"bogus-sig.{ZONE} A",
        f"x1.bogus-expired.{ZONE} AAAA",
        f"root-key-sentinel-is-ta-20326.x1.sentinel.{ZONE} A",
        f"root-key-sentinel-not-ta-38696.x1.sentinel.{ZONE} A",
        f"nx1.{ZONE} A",
        f"valid.d2a13n3.{ZONE} A",
        f"nx2.d2a8n3.{ZONE} A",
        f"{ZONE} SOA",
        ". DNSKEY",
    ]
    unique = []
    for _ in range(count):
        label = secrets.token_hex(rng.randint(3, 8))
        pick = rng.randrange(4)
        if pick == 0:
            unique.append(f"{label}.{rng.choice(kinds)}.{ZONE} A")
        elif pick == 1:
            tag = rng.choice((20326, 38696))
            kind = rng.choice(("is", "not"))
            unique.append(
                f"root-key-sentinel-{kind}-ta-{tag:05d}.{label}.sentinel.{ZONE} A"
            )
        elif pick == 2:
            unique.append(f"{label}.nx.{ZONE} A")
        else:
            unique.append(f"{label}.valid.d2a13n1.{ZONE} AAAA")
    whoami = [
        f"{secrets.token_hex(6)}.whoami.{ZONE} {rng.choice(('A', 'TXT'))}"
        for _ in range(count)
    ]
    files = {
        "fixed": fixed,
        "unique": unique,
        "whoami": whoami,
        "whoami-fixed": [f"ip.whoami.{ZONE} A"],
        "pdns": ["ip.whoami.test. A"],
    }
    paths = {}
    for name, lines in files.items():
        path = directory / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        paths[name] = path
    return paths


def nsd_config(directory: Path, zones: list[Path], workers: int) -> Path:
    conf = directory / "nsd.conf"
    lines = [
        "server:",
        f"  ip-address: {NSD}",
        "  port: 53",
        '  username: ""',
        '  chroot: ""',
        f'  zonesdir: "{directory}"',
        '  database: ""',
        f'  zonelistfile: "{directory}/zone.list"',
        f'  xfrdfile: "{directory}/xfrd.state"',
        f'  xfrdir: "{directory}"',
        f'  pidfile: "{directory}/nsd.pid"',
        f'  logfile: "{directory}/nsd.log"',
        f"  server-count: {workers}",
        "  refuse-any: yes",
        "  minimal-responses: yes",
        "  rrl-ratelimit: 0",  # Debian's NSD rate-limits by default (notes §11.4)
        "remote-control:",
        "  control-enable: no",
    ]
    for path in zones:
        apex = "." if path.name == "root.zone" else path.name[: -len(".zone")] + "."
        lines += ["zone:", f'  name: "{apex}"', f'  zonefile: "{path}"']
    conf.write_text("\n".join(lines) + "\n")
    return conf


def pdns_setup(directory: Path) -> Path:
    """PowerDNS Authoritative with a signed LUA whoami (testbed notes §4)."""
    conf_dir = directory / "pdns"
    conf_dir.mkdir()
    (conf_dir / "whoami.test.zone").write_text(
        "$TTL 300\n"
        "whoami.test. IN SOA ns1.whoami.test. h.whoami.test. 1 3600 600 86400 300\n"
        "whoami.test. IN NS ns1.whoami.test.\n"
        f"ns1.whoami.test. IN A {PDNS}\n"
        'ip 0 IN LUA A "who:toString()"\n'
    )
    (conf_dir / "named.conf").write_text(
        f'zone "whoami.test" {{ type master; file "{conf_dir}/whoami.test.zone"; }};\n'
    )
    (conf_dir / "pdns.conf").write_text(
        "\n".join(
            [
                "launch=bind",
                f"bind-config={conf_dir}/named.conf",
                f"bind-dnssec-db={conf_dir}/dnssec.db",
                f"local-address={PDNS}",
                "local-port=53",
                "enable-lua-records=yes",
                f"socket-dir={conf_dir}",
                "daemon=no",
                "guardian=no",
                "disable-syslog=yes",
                "loglevel=3",
                "primary=no",
                "webserver=no",
            ]
        )
        + "\n"
    )
    for args in (
        ["create-bind-db", f"{conf_dir}/dnssec.db"],
        ["secure-zone", "whoami.test"],
    ):
        subprocess.run(
            ["pdnsutil", f"--config-dir={conf_dir}", *args],
            check=True,
            capture_output=True,
        )
    return conf_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="per dnsperf run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and mix")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="our worker processes and NSD's server-count (default: CPUs)",
    )
    parser.add_argument(
        "--names", type=int, default=50000, help="unique names per file"
    )
    parser.add_argument("--no-query-log", action="store_true")
    parser.add_argument("--profile", type=Path, help="cProfile our server into FILE")
    args = parser.parse_args()
    for tool in ("dnsperf", "nsd", "pdns_server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (run scripts/setup.sh)")
    rootcanary = [sys.executable, "-m", "rootcanary"]
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as tmp:
        work = Path(tmp)
        state = work / "state"
        zones_dir = work / "zones"
        scenario = REPO / "scenarios" / "canary.toml"
        subprocess.run(
            [
                *rootcanary,
                "zone",
                "export",
                str(scenario),
                str(zones_dir),
                "--state-dir",
                str(state),
            ],
            check=True,
            capture_output=True,
        )
        zones = sorted(zones_dir.glob("*.zone"))
        queries = write_queries(work, args.names)
        serve = [
            *rootcanary,
            "-q",
            "serve",
            str(scenario),
            "--listen",
            f"{OURS}:53",
            "--state-dir",
            str(state),
            "--workers",
            str(args.workers),
        ]
        if not args.no_query_log:
            serve += ["--query-log", str(work / "query.log")]
        if args.profile:
            serve = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(args.profile),
                "-m",
                "rootcanary",
                *serve[3:],
            ]
        samples: dict[str, list[float]] = {}
        cpu: dict[str, list[tuple[float, float]]] = {}
        losses: dict[str, list[float]] = {}
        with (
            running(
                ["nsd", "-d", "-c", str(nsd_config(work, zones, args.workers))],
                work / "nsd.out",
            ) as nsd,
            running(serve, work / "ours.out", cwd=REPO) as ours,
            running(
                ["pdns_server", f"--config-dir={pdns_setup(work)}"], work / "pdns.out"
            ) as pdns,
        ):
            wait_ready(NSD, ZONE, nsd)
            wait_ready(OURS, ZONE, ours)
            wait_ready(PDNS, "whoami.test.", pdns)
            pairs = (
                ("fixed", ("nsd fixed", NSD, "fixed"), ("ours fixed", OURS, "fixed")),
                (
                    "unique",
                    ("nsd unique", NSD, "unique"),
                    ("ours unique", OURS, "unique"),
                ),
                (
                    "whoami",
                    ("pdns lua whoami", PDNS, "pdns"),
                    ("ours whoami", OURS, "whoami"),
                ),
            )
            # Rounds alternate between the reference and ours, so that load
            # from other processes on the machine hits both alike; the
            # medians are compared.
            for _name, *runs in pairs:
                for _ in range(args.rounds):
                    for label, address, mix in runs:
                        before = cpu_seconds(ours.pid)
                        qps, lost = dnsperf(address, queries[mix], args.seconds)
                        after = cpu_seconds(ours.pid)
                        samples.setdefault(label, []).append(qps)
                        losses.setdefault(label, []).append(lost)
                        if address == OURS:
                            count = qps * args.seconds
                            cpu.setdefault(label, []).append(
                                (
                                    (after[0] - before[0]) / count,
                                    (after[1] - before[1]) / count,
                                )
                            )
            samples["ours whoami fixed"] = [
                dnsperf(OURS, queries["whoami-fixed"], args.seconds)[0]
            ]
            losses["ours whoami fixed"] = [0.0]
            for label, values in samples.items():
                print(
                    f"{label:<20} {statistics.median(values):>10.0f} qps (median of "
                    f"{len(values)}: {' '.join(f'{v:.0f}' for v in values)})  "
                    f"lost {max(losses[label]):.2f}%",
                    flush=True,
                )
        for label, values in cpu.items():
            user = statistics.median(v[0] for v in values) * 1e6
            system = statistics.median(v[1] for v in values) * 1e6
            print(
                f"{label:<20} CPU per query: {user:.1f} us user (Python), "
                f"{system:.1f} us system (sockets, loopback)"
            )
        log_lines = 0
        if not args.no_query_log and (work / "query.log").exists():
            with (work / "query.log").open("rb") as fh:
                log_lines = sum(1 for _ in fh)

    def ratio(a: str, b: str) -> float:
        return statistics.median(samples[a]) / statistics.median(samples[b])

    print(
        f"\nworkers / NSD server-count: {args.workers}; query log "
        f"{'off' if args.no_query_log else f'on ({log_lines} lines)'}; "
        f"{os.cpu_count()} CPUs shared with dnsperf"
    )
    for title, ours, ref, target in (
        ("static, fixed names: ours / NSD", "ours fixed", "nsd fixed", 0.5),
        ("static, unique names: ours / NSD", "ours unique", "nsd unique", 0.5),
        (
            "whoami, unique names: ours / PowerDNS LUA",
            "ours whoami",
            "pdns lua whoami",
            20,
        ),
    ):
        print(f"{title:<42} {ratio(ours, ref):6.2f}  (target >= {target})")


if __name__ == "__main__":
    main()
