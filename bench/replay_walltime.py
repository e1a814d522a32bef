"""Wall time of the full rollover replays, against their own timelines.

Runs ``rootcanary testbed run`` on each scenario (default: the two shipped
replays, one after the other: they share the testbed addresses) and prints
the wall time, the timeline's length (last phase + settle) and their ratio:
the overhead of bringing the testbed up and down and of probing. Each replay
stops by itself; the target is under 15 minutes each.

    .venv/bin/python bench/replay_walltime.py [SCENARIO ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rootcanary.scenario import load_scenario  # noqa: E402

DEFAULT = ("scenarios/ksk-2017-replay.toml", "scenarios/ksk-2024-replay.toml")


def main(paths: list[str]) -> int:
    rows = []
    for text in paths or DEFAULT:
        path = (REPO / text) if not Path(text).is_absolute() else Path(text)
        scenario = load_scenario(path)
        assert scenario.rollover is not None, f"{path} has no [rollover]"
        timeline = scenario.rollover.duration
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "rootcanary", "testbed", "run", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeline + 600,
        )
        wall = time.monotonic() - started
        verdict = "ok" if done.returncode == 0 else f"exit {done.returncode}"
        rows.append((scenario.name, wall, timeline, verdict))
        print(done.stdout, end="")
        print(
            f"{scenario.name}: {wall:.0f} s wall, {timeline:.0f} s timeline, "
            f"ratio {wall / timeline:.3f}, {verdict}",
            flush=True,
        )
    print()
    print(f"{'scenario':<20} {'wall s':>8} {'timeline s':>11} {'ratio':>7}  verdict")
    for name, wall, timeline, verdict in rows:
        print(
            f"{name:<20} {wall:8.0f} {timeline:11.0f} {wall / timeline:7.3f}  {verdict}"
        )
    return 0 if all(row[3] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
