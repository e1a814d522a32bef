"""The local testbed: a private DNS hierarchy and real resolvers on loopback.

The authoritative server (``rootcanary serve``) serves the scenario's private
root, TLD and test zones on one loopback address; each resolver of the
``[testbed]`` section runs on its own loopback address, which is also its
outgoing address, so our server's query log and the whoami names tell them
apart. Usage from code (tests, the demo, rollover replays)::

    with Testbed(load_scenario("scenarios/demo.toml")) as testbed:
        for resolver in testbed.resolvers:
            ...  # query resolver.address

``up`` writes ``testbed.json`` into the run directory after every start, so
``rootcanary testbed down`` in another process stops exactly the pids started,
and a crash half-way through ``up`` leaves nothing it cannot clean.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Protocol

from rootcanary.campaign import write_atomic
from rootcanary.errors import MissingBinaryError, TestbedError
from rootcanary.scenario import Scenario
from rootcanary.scenario.testbed import ResolverSpec, TestbedSpec
from rootcanary.testbed import loopback
from rootcanary.testbed.anchors import Anchor, stale_anchor
from rootcanary.testbed.process import (
    ProcessRecord,
    is_running,
    spawn,
    terminate,
    wait_until_answers,
)
from rootcanary.testbed.resolvers import BINARIES, Launch, Settings, render

log = logging.getLogger("rootcanary.testbed")

STATE_FILE = "testbed.json"


@dataclass(frozen=True)
class RunningResolver:
    """A resolver of the testbed as its users see it."""

    name: str
    implementation: str
    variant: str
    address: str
    port: int
    pid: int
    log: Path
    directory: Path


class Authority(Protocol):
    """How the testbed gets its signed hierarchy: keys first, then a process."""

    def anchor(self, directory: Path) -> Anchor:
        """Make sure keys exist; return the private root's trust anchor."""
        ...

    def argv(self, directory: Path, address: str, port: int) -> tuple[str, ...]:
        """The command line that serves the hierarchy on address:port."""
        ...


class Authserver:
    """The project's own server, run as ``python -m rootcanary serve``."""

    def __init__(self, scenario: Scenario) -> None:
        if scenario.path is None:
            raise TestbedError("the testbed needs a scenario read from a file")
        self.scenario = scenario
        # The server runs in its own directory: give it an absolute path.
        self.path = scenario.path.resolve()

    def anchor(self, directory: Path) -> Anchor:
        from authserver.anchor import root_trust_anchor

        # A replay starts from the old KSK only; the new one is yet to come.
        rollover = self.scenario.rollover
        slots = (rollover.old,) if rollover is not None else None
        ta = root_trust_anchor(self.scenario, directory / "keys", slots)
        # AnchorKey.ds lines are ". IN DS <rdata>"; resolvers want the RDATA.
        ds = tuple(line.split(" DS ", 1)[1] for key in ta.keys for line in key.ds)
        return Anchor(tuple(key.rdata for key in ta.keys), ds)

    def argv(self, directory: Path, address: str, port: int) -> tuple[str, ...]:
        host = f"[{address}]" if ":" in address else address
        return (
            sys.executable,
            "-m",
            "rootcanary",
            "serve",
            str(self.path),
            "--listen",
            f"{host}:{port}",
            "--state-dir",
            str(directory / "keys"),
            "--query-log",
            str(directory / "queries.jsonl"),
            "--events",
            str(directory / "events.jsonl"),
        )


def default_run_dir(scenario: Scenario) -> Path:
    spec = scenario.testbed
    if spec is not None and spec.run_dir is not None:
        return spec.run_dir
    return Path("runs") / scenario.name


class Testbed:
    """Bring a scenario's testbed up, keep track of it, and take it down."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        scenario: Scenario,
        run_dir: Path | None = None,
        authority: Authority | None = None,
    ) -> None:
        if scenario.testbed is None:
            raise TestbedError(f"{scenario.path}: has no [testbed] section")
        self.scenario = scenario
        self.spec: TestbedSpec = scenario.testbed
        self.run_dir = (run_dir or default_run_dir(scenario)).resolve()
        self.authority = authority or Authserver(scenario)
        self.anchor: Anchor | None = None
        self.resolvers: list[RunningResolver] = []
        self.records: list[ProcessRecord] = []
        self._aliases: list[str] = []
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._launches: dict[str, Launch] = {}
        self._settings: Settings | None = None

    # -- paths ------------------------------------------------------------------

    @property
    def server_dir(self) -> Path:
        return self.run_dir / "server"

    @property
    def query_log(self) -> Path:
        return self.server_dir / "queries.jsonl"

    @property
    def state_file(self) -> Path:
        return self.run_dir / STATE_FILE

    # -- life cycle -----------------------------------------------------------

    def __enter__(self) -> Testbed:
        self._old_term = signal.getsignal(signal.SIGTERM)
        if _main_thread():
            signal.signal(signal.SIGTERM, _raise_on_term)
        try:
            self.up()
        except BaseException:
            self.down()
            self._restore_signal()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.down()
        finally:
            self._restore_signal()

    def _restore_signal(self) -> None:
        if _main_thread():
            signal.signal(signal.SIGTERM, self._old_term)

    def up(self) -> list[RunningResolver]:
        """Start the server and every resolver; return when all answer."""
        self._check_binaries()
        if self.state_file.exists():
            stop_recorded(self.state_file)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self.resolvers

    def _up(self) -> None:
        spec = self.spec
        self._aliases = loopback.ensure(
            [spec.server, *(r.address for r in spec.resolvers)]
        )
        self._save()
        self.server_dir.mkdir(parents=True, exist_ok=True)
        self.anchor = self.authority.anchor(self.server_dir)
        self._settings = Settings(
            hints=self._write_hints(),
            anchor=self.anchor,
            stale=stale_anchor(self.run_dir / "stale"),
            tlds=self._tlds(),
            holddown=spec.holddown,
            refresh=spec.refresh,
        )
        self._start_server()
        # Start every resolver, then wait for each: the daemons boot in parallel.
        started = [self._spawn_resolver(resolver) for resolver in spec.resolvers]
        for resolver, process in started:
            self._wait_resolver(resolver, process)
        log.info(
            "testbed up: server on %s, %d resolvers (%s)",
            spec.server,
            len(self.resolvers),
            ", ".join(f"{r.name} {r.address}" for r in self.resolvers),
        )

    def _start_server(self) -> None:
        spec = self.spec
        argv = self.authority.argv(self.server_dir, spec.server, spec.server_port)
        log_path = self.server_dir / "server.log"
        process = spawn(argv, log_path, self.server_dir)
        self._track(
            ProcessRecord(
                "server",
                "server",
                process.pid,
                argv,
                str(log_path),
                spec.server,
                spec.server_port,
            ),
            process,
        )
        apex = self.scenario.root.apex if self.scenario.root else "."
        wait_until_answers(
            process,
            "the authoritative server",
            spec.server,
            spec.server_port,
            log_path,
            spec.start_timeout,
            apex,
        )

    def _start_resolver(self, resolver: ResolverSpec) -> None:
        self._wait_resolver(*self._spawn_resolver(resolver))

    def _spawn_resolver(
        self, resolver: ResolverSpec
    ) -> tuple[ResolverSpec, subprocess.Popen[bytes]]:
        assert self._settings is not None
        directory = self.run_dir / resolver.name
        directory.mkdir(parents=True, exist_ok=True)
        binary, package = BINARIES[resolver.implementation]
        path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
        if path is None:
            raise MissingBinaryError(binary, package)
        launch = render(resolver, self._settings, directory, path)
        self._launches[resolver.name] = launch
        # A managed anchor is state the daemon rewrites; if the root's keys were
        # made anew since it was seeded, that state belongs to another root.
        seeded = directory / ".seeded-anchor"
        anchor_text = "\n".join(self._settings.anchor.dnskeys)
        if resolver.variant == "stateless" or (
            seeded.exists() and seeded.read_text() != anchor_text
        ):
            _wipe(launch.state)
        seeded.write_text(anchor_text)
        for file, content in launch.files:
            file.write_text(content)
        for file, content in launch.seeds:
            if not file.exists():
                file.write_text(content)
        if resolver.implementation == "kresd":
            (directory / "rundir").mkdir(exist_ok=True)
        log_path = directory / f"{resolver.name}.log"
        process = spawn(launch.argv, log_path, directory)
        record = ProcessRecord(
            resolver.name,
            resolver.implementation,
            process.pid,
            launch.argv,
            str(log_path),
            resolver.address,
            resolver.port,
        )
        self._track(record, process)
        return resolver, process

    def _wait_resolver(
        self, resolver: ResolverSpec, process: subprocess.Popen[bytes]
    ) -> None:
        binary = BINARIES[resolver.implementation][0]
        directory = self.run_dir / resolver.name
        log_path = directory / f"{resolver.name}.log"
        wait_until_answers(
            process,
            f"{resolver.name} ({binary})",
            resolver.address,
            resolver.port,
            log_path,
            self.spec.start_timeout,
        )
        self.resolvers = [r for r in self.resolvers if r.name != resolver.name]
        self.resolvers.append(
            RunningResolver(
                resolver.name,
                resolver.implementation,
                resolver.variant,
                resolver.address,
                resolver.port,
                process.pid,
                log_path,
                directory,
            )
        )
        self._save()

    def restart(self, name: str) -> RunningResolver:
        """Stop and start one resolver (a ``stateless`` one loses its state)."""
        resolver = next((r for r in self.spec.resolvers if r.name == name), None)
        if resolver is None:
            raise TestbedError(f"no resolver named {name!r} in this testbed")
        for record in [r for r in self.records if r.name == name]:
            self._stop(record)
        self._start_resolver(resolver)
        return next(r for r in self.resolvers if r.name == name)

    def down(self) -> None:
        """Stop everything this testbed started, server last; remove aliases."""
        errors = []
        for record in reversed(list(self.records)):
            try:
                self._stop(record)
            except TestbedError as exc:
                errors.append(str(exc))
        loopback.remove(self._aliases)
        self._aliases = []
        self.resolvers = []
        self.state_file.unlink(missing_ok=True)
        if errors:
            raise TestbedError("; ".join(errors))

    def _stop(self, record: ProcessRecord) -> None:
        child = self._children.pop(record.pid, None)
        killed = terminate(
            record.pid, record.argv[0], reap=child.poll if child else None
        )
        if child is not None:
            child.wait(timeout=5)
        if killed:
            log.warning(
                "%s (pid %d) ignored SIGTERM and was killed", record.name, record.pid
            )
        self.records = [r for r in self.records if r.pid != record.pid]
        self._save()

    # -- state ----------------------------------------------------------------

    def _track(self, record: ProcessRecord, process: subprocess.Popen[bytes]) -> None:
        self.records = [r for r in self.records if r.name != record.name] + [record]
        self._children[record.pid] = process
        self._save()

    def _save(self) -> None:
        state = {
            "scenario": str(self.scenario.path),
            "run_dir": str(self.run_dir),
            "aliases": self._aliases,
            "processes": [r.to_dict() for r in self.records],
            "resolvers": [
                {
                    "name": r.name,
                    "implementation": r.implementation,
                    "variant": r.variant,
                    "address": r.address,
                    "port": r.port,
                    "pid": r.pid,
                }
                for r in self.resolvers
            ],
            "keytags": list(self.anchor.keytags) if self.anchor else [],
        }
        write_atomic(self.state_file, json.dumps(state, indent=2) + "\n")

    def _write_hints(self) -> Path:
        from authserver.anchor import root_hints

        root = self.scenario.root
        if root is None:
            raise TestbedError(
                f"{self.scenario.path}: the testbed needs a [[zone]] for '.'"
            )
        elsewhere = [
            ns.name
            for ns in root.nameservers
            if ns.addresses and self.spec.server not in ns.addresses
        ]
        if elsewhere:
            # Resolvers would send part of their root queries nowhere.
            raise TestbedError(
                f"{self.scenario.path}: root name server(s) {', '.join(elsewhere)} "
                f"have addresses other than the testbed server {self.spec.server}"
            )
        path = self.run_dir / "root.hints"
        listen = ((self.spec.server, self.spec.server_port),)
        path.write_text(root_hints(self.scenario, listen))
        return path

    def _tlds(self) -> tuple[str, ...]:
        tlds = []
        for zone in self.scenario.zones:
            if zone.apex != ".":
                tld = zone.apex.rstrip(".").rsplit(".", 1)[-1] + "."
                if tld not in tlds:
                    tlds.append(tld)
        return tuple(tlds)

    def _check_binaries(self) -> None:
        for resolver in self.spec.resolvers:
            binary, package = BINARIES[resolver.implementation]
            if not (
                shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
            ):
                raise MissingBinaryError(binary, package)

    def resolver(self, name: str) -> RunningResolver:
        for resolver in self.resolvers:
            if resolver.name == name:
                return resolver
        raise TestbedError(f"no running resolver named {name!r}")

    @property
    def pids(self) -> list[int]:
        return [r.pid for r in self.records]


def stop_recorded(state_file: Path) -> list[str]:
    """Stop every process a state file lists (by pid, after checking it)."""
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as exc:
        raise TestbedError(f"{state_file}: unreadable testbed state: {exc}") from None
    stopped = []
    for data in reversed(state.get("processes", [])):
        record = ProcessRecord.from_dict(data)
        if is_running(record.pid, record.argv[0]):
            terminate(record.pid, record.argv[0])
            stopped.append(f"{record.name} (pid {record.pid})")
    loopback.remove(list(state.get("aliases", [])))
    state_file.unlink(missing_ok=True)
    return stopped


def read_state(run_dir: Path) -> dict[str, object] | None:
    path = run_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise TestbedError(f"{path}: unreadable testbed state: {exc}") from None
    return data if isinstance(data, dict) else None


def _wipe(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _main_thread() -> bool:
    # Signal handlers can only be set from the main thread.
    return threading.current_thread() is threading.main_thread()


def _raise_on_term(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that `with Testbed(...)` tears down.
    raise KeyboardInterrupt(f"signal {signum}")


__all__ = [
    "Anchor",
    "Authority",
    "Authserver",
    "RunningResolver",
    "Testbed",
    "default_run_dir",
    "read_state",
    "stop_recorded",
]
