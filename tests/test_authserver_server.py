"""The server as a process: start, answer, log, reload, re-sign, stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from authserver_support import (
    CANARY,
    Addresses,
    query,
    running_server,
    serve_command,
    shared_state,
    wait_for,
)
from typer.testing import CliRunner

from authserver.anchor import root_trust_anchor
from authserver.build import ZoneBuilder
from authserver.engine import Endpoint, Engine
from authserver.server import ServeOptions, Worker
from rootcanary import names
from rootcanary.cli import app
from rootcanary.scenario import load_scenario

pytestmark = pytest.mark.integration

NET = Addresses(net="127.0.21")
Z = "canary.test."
LOG_KEYS = [
    "time",
    "transport",
    "src",
    "sport",
    "dst",
    "dport",
    "id",
    "qname",
    "qtype",
    "qclass",
    "opcode",
    "rd",
    "cd",
    "edns",
    "bufsize",
    "do",
    "opts",
    "edns_key_tag",
    "ta",
    "rcode",
    "size",
    "tc",
    "zone",
]


@pytest.fixture
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_state(tmp_path_factory)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_serve_announces_answers_and_stops_cleanly(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "q.log"
    with running_server(
        tmp_path, CANARY, NET(1), "--state-dir", str(state), "--query-log", str(log)
    ) as server:
        anchor = root_trust_anchor(load_scenario(CANARY), state)
        err = server.stderr
        assert "serving 49 zones: . test. canary.test." in err
        assert f"listening on {NET(1)}:53" in err
        assert f"DS (trust anchor): {anchor.ds_lines[0]}" in err
        udp = query(NET(1), names.valid_name(Z))
        assert udp.rcode() == dns.rcode.NOERROR and udp.answer
        tcp = query(NET(1), names.big_name(Z), "TXT", tcp=True)
        assert len(tcp.to_wire()) >= 1425 and not tcp.flags & dns.flags.TC
        whoami = query(NET(1), names.whoami_name(Z, "p1"), "TXT")
        assert whoami.answer[0][0].to_text() == '"127.0.0.1"'
        code = server.stop()
    assert code == 0
    assert re.search(
        r"worker 0: stopped; \d+ queries; dropped 0; FORMERR 0", server.stderr
    )
    lines = _lines(log)
    assert [line["transport"] for line in lines[-3:]] == ["udp", "tcp", "udp"]


def test_serve_on_ipv6(tmp_path: Path, state: Path) -> None:
    with running_server(
        tmp_path, CANARY, "::1", "--state-dir", str(state), port=5391
    ) as server:
        reply = query("::1", names.whoami_name(Z, "six"), "AAAA", port=5391)
        assert reply.answer[0][0].to_text() == "::1"
        assert query("::1", Z, "SOA", port=5391, tcp=True).answer
        server.stop()


def test_bind_failure_exits_at_once_with_the_reason(
    tmp_path: Path, state: Path
) -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((NET(2), 53))
    try:
        started = time.monotonic()
        result = subprocess.run(
            serve_command(
                CANARY, "--listen", f"{NET(2)}:53", "--state-dir", str(state)
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        blocker.close()
    assert result.returncode == 1
    assert f"cannot listen on {NET(2)}:53/udp: Address already in use" in result.stderr
    assert (
        time.monotonic() - started < 30
    )  # never reaches signing (no timing claim on speed)
    assert "serving" not in result.stderr


def test_refuses_group_readable_private_keys(tmp_path: Path) -> None:
    state = tmp_path / "state"
    scenario = tmp_path / "small.toml"
    scenario.write_text('[[zone]]\napex = "canary.test."\n')
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["zone", "ds", str(scenario), "--state-dir", str(state)]
        ).exit_code
        == 0
    )
    private = next((state / "keys").glob("*.private"))
    private.chmod(0o644)
    result = subprocess.run(
        serve_command(scenario, "--listen", f"{NET(3)}:53", "--state-dir", str(state)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{private}: private key file has mode 0644" in result.stderr


def test_query_log_lines_follow_the_contract(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "q.log"
    with running_server(
        tmp_path, CANARY, NET(4), "--state-dir", str(state), "--query-log", str(log)
    ):
        signal_query = dns.message.make_query(
            "_Ta-4F66-9728.", "NULL", want_dnssec=True
        )
        dns.query.udp(signal_query, NET(4), timeout=3)
        minimised = dns.message.make_query("_ta-4f66.", "A")
        dns.query.udp(minimised, NET(4), timeout=3)
        keytag = dns.message.make_query(
            ".",
            "DNSKEY",
            want_dnssec=True,
            payload=1232,
            options=[dns.edns.GenericOption(14, struct.pack("!HH", 20326, 38696))],
        )
        keytag.flags |= dns.flags.CD
        dns.query.udp(keytag, NET(4), timeout=3)
        plain = dns.message.make_query("VaLiD." + Z, "AAAA", use_edns=False)
        dns.query.udp(plain, NET(4), timeout=3)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"\x01\x02\x03", (NET(4), 53))
        sock.close()
        # Written within about a second, while the server keeps running.
        wait_for(
            lambda: log.exists() and len(log.read_text().splitlines()) >= 6, 10, "log"
        )
    lines = _lines(log)
    for line in lines:
        assert list(line)[: len(LOG_KEYS)] == LOG_KEYS
        assert str(line["time"]).endswith("Z") and len(str(line["time"])) == 27
    by_name = {line["qname"]: line for line in lines}
    ta = by_name["_Ta-4F66-9728."]
    assert (
        ta["ta"] == [20326, 38696]
        and ta["qtype"] == "NULL"
        and ta["rcode"] == "NXDOMAIN"
    )
    assert ta["zone"] == "." and ta["do"] is True and ta["edns"] == 0
    assert by_name["_ta-4f66."]["ta"] == [20326]
    dnskey = by_name["."]
    assert dnskey["edns_key_tag"] == [20326, 38696] and dnskey["opts"] == [14]
    assert dnskey["cd"] is True and dnskey["rd"] is True and dnskey["bufsize"] == 1232
    plain_line = by_name["VaLiD." + Z]
    assert plain_line["edns"] is None and plain_line["bufsize"] is None
    assert plain_line["do"] is False and plain_line["ta"] is None
    assert plain_line["dst"] == NET(4) and plain_line["dport"] == 53
    drop = [line for line in lines if line.get("drop")]
    assert drop and drop[0]["qname"] is None and drop[0]["rcode"] is None
    assert drop[0]["size"] == 0 and drop[0]["drop"] == "short header"
    assert list(drop[0])[-1] == "drop"


def test_kill_9_leaves_whole_lines(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "q.log"
    with running_server(
        tmp_path, CANARY, NET(5), "--state-dir", str(state), "--query-log", str(log)
    ) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(3000):
            msg = dns.message.make_query(names.valid_name(Z, f"k{i}"), "A", id=i)
            sock.sendto(msg.to_wire(), (NET(5), 53))
        sock.close()
        wait_for(lambda: log.exists() and log.stat().st_size > 0, 10, "first flush")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
    text = log.read_text()
    lines = text.split("\n")
    complete, last = lines[:-1], lines[-1]
    for line in complete:
        json.loads(line)
    assert last == "" or not text.endswith("\n")  # only the very last may be torn
    assert len(complete) > 0


def test_two_workers_share_the_load(tmp_path: Path, state: Path) -> None:
    log = tmp_path / "q.log"
    with running_server(
        tmp_path,
        CANARY,
        NET(6),
        "--state-dir",
        str(state),
        "--query-log",
        str(log),
        "--workers",
        "2",
    ) as server:
        assert "2 workers" in server.stderr
        for i in range(200):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port
            sock.settimeout(3)
            msg = dns.message.make_query(names.whoami_name(Z, f"w{i}"), "A")
            sock.sendto(msg.to_wire(), (NET(6), 53))
            reply = dns.message.from_wire(sock.recv(4096))
            assert reply.answer[0][0].to_text() == "127.0.0.1"
            sock.close()
        assert server.stop() == 0
    counts = [
        int(line.split("stopped; ")[1].split()[0])
        for line in server.stderr.splitlines()
        if "stopped; " in line
    ]
    assert len(counts) == 2 and all(counts)
    assert sum(counts) >= 200
    assert len(_lines(log)) == sum(counts)


def test_sighup_reloads_the_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "hup.toml"
    base = (
        '[[zone]]\napex = "canary.test."\ntest_names = true\n'
        "records = ['hello TXT \"{}\"']\n"
    )
    scenario.write_text(base.format("one"))
    with running_server(
        tmp_path, scenario, NET(7), "--state-dir", str(tmp_path / "s")
    ) as server:
        assert query(NET(7), "hello." + Z, "TXT").answer[0][0].to_text() == '"one"'
        scenario.write_text(base.format("two"))
        server.proc.send_signal(signal.SIGHUP)

        def changed() -> bool:
            return query(NET(7), "hello." + Z, "TXT").answer[0][0].to_text() == '"two"'

        wait_for(changed, 30, "the reloaded record")
        scenario.write_text("this is not TOML [")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload failed" in server.stderr, 30, "the reload error")
        assert changed()  # the old zones stay
        assert server.stop() == 0


def test_resigning_swaps_in_new_signatures(tmp_path: Path, state: Path) -> None:
    scenario = load_scenario(CANARY)
    builder = ZoneBuilder(scenario, state, (("127.0.0.1", 53),))
    epoch = builder.epoch_for(time.time()) - 20 * 86400  # signed long ago
    built = builder.build(epoch)
    assert built.refresh_at < time.time()
    engine = Engine(built.served)
    worker = Worker(engine, [], built, builder, ServeOptions(CANARY), 10.0, "test")

    def sig_inception() -> int:
        msg = dns.message.make_query(names.valid_name(Z), "A", want_dnssec=True)
        wire = engine.handle(msg.to_wire(), "127.0.0.1", 1, 4, Endpoint("udp", "x", 53))
        reply = dns.message.from_wire(wire)  # type: ignore[arg-type]
        return int(reply.answer[1][0].inception)

    old = sig_inception()
    worker._housekeeping(time.monotonic(), None)  # type: ignore[arg-type]
    wait_for(lambda: worker._pending is not None, 60, "re-signing")
    worker._housekeeping(time.monotonic(), None)  # type: ignore[arg-type]
    new = sig_inception()
    assert new > old
    assert worker.built.epoch == builder.epoch_for(built.refresh_at)
    assert worker.built.refresh_at > built.refresh_at


def test_zone_commands(tmp_path: Path, state: Path) -> None:
    runner = CliRunner()
    anchor = root_trust_anchor(load_scenario(CANARY), state)
    result = runner.invoke(
        app, ["zone", "anchor", str(CANARY), "--state-dir", str(state)]
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [anchor.keys[0].dnskey, *anchor.keys[0].ds]
    assert anchor.keys[0].dnskey.startswith(". IN DNSKEY 257 3 13 ")
    assert " " not in anchor.keys[0].dnskey.split(" 13 ", 1)[1]  # one base64 word
    ds = runner.invoke(app, ["zone", "ds", str(CANARY), "--state-dir", str(state)])
    assert ds.exit_code == 0 and ds.stdout.splitlines() == list(anchor.ds_lines)
    every = runner.invoke(
        app, ["zone", "ds", str(CANARY), "--state-dir", str(state), "--all"]
    )
    assert any(
        line.startswith("d4a16n3.canary.test. IN DS ")
        for line in every.stdout.splitlines()
    )
    out = runner.invoke(
        app,
        ["zone", "export", str(CANARY), str(tmp_path / "z"), "--state-dir", str(state)],
    )
    assert out.exit_code == 0 and (tmp_path / "z" / "root.zone").exists()
    bad = runner.invoke(app, ["zone", "anchor", str(tmp_path / "missing.toml")])
    assert bad.exit_code == 1


def test_default_state_dir_is_per_scenario_under_xdg_state(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["zone", "anchor", str(CANARY), "--format", "ds"])
    assert result.exit_code == 0
    keys = (
        Path(os.environ["XDG_STATE_HOME"])
        / "rootcanary"
        / "authserver"
        / "canary"
        / "keys"
    )
    assert any(keys.glob("K.+013+*.private"))


def test_sigterm_while_signing_still_exits_0(tmp_path: Path) -> None:
    """Stopped before it ever answered (fresh state: keys are being made)."""
    proc = subprocess.Popen(
        serve_command(
            CANARY, "--listen", f"{NET(8)}:53", "--state-dir", str(tmp_path / "s")
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "s" / "keys").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in err


def test_scenario_without_zones_is_an_error(tmp_path: Path) -> None:
    scenario = tmp_path / "empty.toml"
    scenario.write_text('name = "empty"\n')
    result = subprocess.run(
        serve_command(scenario, "--listen", f"{NET(9)}:53"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "no [[zone]] to serve" in result.stderr


def test_engine_bug_costs_one_answer_not_the_server(state: Path) -> None:
    built = ZoneBuilder(load_scenario(CANARY), state, (("127.0.0.1", 53),)).build()
    engine = Engine(built.served)

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("simulated bug")

    engine.handle = broken  # type: ignore[method-assign]
    from authserver.server import Listener

    server_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server_sock.bind((NET(10), 0))
    server_sock.setblocking(False)
    listener = Listener(server_sock, "udp", NET(10), server_sock.getsockname()[1])
    worker = Worker(engine, [listener], built, None, ServeOptions(CANARY), 10.0, "t")  # type: ignore[arg-type]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(3)
    try:
        msg = dns.message.make_query(names.valid_name(Z), "A", id=4711)
        client.sendto(msg.to_wire(), server_sock.getsockname())
        time.sleep(0.05)
        worker._udp(listener)
        reply = dns.message.from_wire(client.recv(512))
        assert reply.id == 4711 and reply.rcode() == dns.rcode.SERVFAIL
        assert worker.crashes == 1
    finally:
        client.close()
        server_sock.close()


def test_unwritable_query_log_is_counted_not_fatal() -> None:
    from authserver.querylog import QueryLog

    log = QueryLog(Path("/dev/full"))  # every write fails with ENOSPC
    log.add("{}\n")
    log.add("{}\n")
    log.flush()
    assert log.lost == 2 and log.written == 0
    log.add("{}\n")
    log.close()
    assert log.lost == 3
