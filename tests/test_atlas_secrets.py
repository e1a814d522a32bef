"""The API key never reaches an output, a file, an error message or a traceback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import atlas_fixtures as fx
import pytest
from atlas_fixtures import KEY, cli_env, run_cli, scenario
from atlas_standin import Fault, StandIn

from rootcanary.backends.atlas.client import AtlasClient, Endpoint, RetryPolicy
from rootcanary.backends.atlas.keys import ENV_KEY, config_file, find_key, require_key
from rootcanary.errors import AtlasError, ConfigError
from rootcanary.secrets import Secret

certificates = fx.certificates
standin = fx.standin

# The key and long pieces of it: a leak of half a key is a leak too.
NEEDLES = [KEY, *(KEY[i : i + 12] for i in range(0, len(KEY) - 12, 6))]


def _leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def _file_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace")


def test_no_key_in_any_output_or_file(
    tmp_path: Path,
    standin: StandIn,
    certificates: tuple[Path, Path, Path],
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = cli_env(standin, certificates[0], key=None)
    # The key comes from the config file here; the env and --key paths below.
    config = Path(env["XDG_CONFIG_HOME"]) / "rootcanary" / "atlas.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'key = "{KEY}"\n')
    config.chmod(0o600)
    path = scenario(work, atlas='interval = "60s"\nduration = "1d"')
    campaign = work / "c"
    standin.inject(
        Fault("POST", r"^/api/v2/measurements/$", action="after", status=502)
    )
    standin.inject(Fault("GET", r"/results", status=500, times=1))
    runs = [
        (["-v", "schedule", str(path), "--campaign", str(campaign), "--dry-run"], env),
        (["-v", "schedule", str(path), "--campaign", str(campaign), "--yes"], env),
        (["-v", "status", str(campaign)], env),
        (["-v", "fetch", str(campaign)], env),
        (["-v", "fetch", str(campaign), "--key", KEY], env),
        (["-v", "status", str(campaign), "--format", "json"], {**env, ENV_KEY: KEY}),
        (["-v", "stop", str(campaign), "--role", "valid", "--yes"], env),
        # A wrong key: the API's 403 message, and neither key in it.
        (["-v", "stop", str(campaign), "--yes", "--key", KEY[::-1]], env),
    ]
    outputs = []
    for args, run_env in runs:
        result = run_cli(args, run_env, work)
        outputs.append((args, result))
        assert not _leaks(result.stdout + result.stderr), args
    codes = [result.returncode for _, result in outputs]
    assert codes == [0, 0, 0, 0, 0, 0, 0, 1], [r.stderr for _, r in outputs]
    assert "The provided API key does not exist" in outputs[-1][1].stderr
    assert KEY[::-1] not in outputs[-1][1].stderr
    assert "adopted" in outputs[1][1].stderr  # the 502 path ran
    assert "HTTP 500" in outputs[3][1].stderr  # and the retry path

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != config]
    assert any(p.name == "manifest.json" for p in files)
    assert any(p.name.endswith(".jsonl.gz") for p in files)
    for file in files:
        assert not _leaks(_file_text(file)), file


def test_no_key_in_a_traceback(
    tmp_path: Path, standin: StandIn, certificates: tuple[Path, Path, Path]
) -> None:
    # A bug (an unexpected exception deep in a call that holds the key) must
    # not print the key: tracebacks show no locals.
    env = cli_env(standin, certificates[0])
    path = scenario(tmp_path)
    code = (
        "import sys\n"
        "from rootcanary.backends.atlas import client\n"
        "def broken(self, body):\n"
        "    key = self._key.reveal()\n"
        "    raise RuntimeError('unexpected')\n"
        "client.AtlasClient.create = broken\n"
        "from rootcanary.cli import app\n"
        "sys.argv = ['rootcanary', 'schedule', sys.argv[1], '--campaign', "
        "sys.argv[2], '--yes']\n"
        "app()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "c")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr
    assert not _leaks(result.stdout + result.stderr)


def test_key_precedence_flag_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_key() is None
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text('key = "from-file"\n')
    path.chmod(0o600)
    found = find_key()
    assert found is not None and found.key.reveal() == "from-file"
    assert found.source == str(path)
    monkeypatch.setenv(ENV_KEY, "from-env")
    found = find_key()
    assert found is not None and found.key.reveal() == "from-env"
    assert found.source == ENV_KEY
    found = find_key("from-flag")
    assert found is not None and found.key.reveal() == "from-flag"
    assert found.source == "--key"
    assert "from-flag" not in repr(found) and "from-flag" not in str(found.key)


def test_a_readable_key_file_is_warned_about_and_a_broken_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text('key = "abc-secret-123"\n')
    path.chmod(0o644)
    assert find_key() is not None
    assert "can be read by other users" in caplog.text
    path.write_text('key = "abc-secret-123\n')  # unterminated string
    with pytest.raises(ConfigError) as info:
        find_key()
    assert "not valid TOML" in str(info.value)
    assert "abc-secret-123" not in str(info.value)
    path.unlink()
    with pytest.raises(ConfigError, match="no RIPE Atlas API key"):
        require_key()


def test_connection_errors_do_not_quote_the_key(tmp_path: Path) -> None:
    # Nothing listens on this port: cousteau returns the exception's args.
    client = AtlasClient(
        Endpoint("127.0.0.1:9"), Secret(KEY), RetryPolicy(retries=1, backoff=0.001)
    )
    with pytest.raises(AtlasError) as info:
        client.measurement(1)
    assert "no answer from 127.0.0.1:9" in str(info.value)
    assert "gave up after 2 attempts" in str(info.value)
    assert not _leaks(str(info.value) + repr(info.value))
    assert os.environ.get(ENV_KEY) is None
