"""Regression tests for #13 item 8: a detached daemon's logs/omnitron.log held every app line again and was
never rotated (1.07 GB in 6 s while the apps' own logs stayed at their cap). Now it holds the daemon's own
events only and rotates by `[daemon.logs]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil

from tests.daemon_harness import cli, write_config
from tests.helpers import APPS, is_alive, kill_if_alive, wait_for


def test_detached_daemon_log_has_no_app_lines_and_rotates(home: Path, tmp_path: Path) -> None:
    spew = json.dumps([sys.executable, "-u", "-c", "import itertools\nfor i in itertools.count(): "
                       "print('app-line', i, 'x' * 200, flush=i % 100 == 0)"])
    crash = json.dumps([sys.executable, "-u", str(APPS / "crash.py"), "1"])
    config = write_config(tmp_path, f"""
        [daemon]
        log_format = "json"
        [daemon.logs]
        max_size = "4KB"
        keep = 2

        [[apps]]
        name = "spew"
        command = {spew}

        [[apps]]
        name = "crashy"
        command = {crash}
        min_uptime = "5s"
        max_restarts = 1000
        backoff = {{ initial = "10ms", max = "20ms", jitter = 0 }}
    """)
    up = cli("up", "-c", str(config), home=home)
    assert up.returncode == 0, up.stderr
    pid = int((home / "omnitron.pid").read_text().strip())
    leftovers = [psutil.Process(pid)]
    logs = home / "logs"
    try:
        leftovers += psutil.Process(pid).children(recursive=True)
        # the crash loop writes daemon events fast: the daemon log fills and rotates, keep = 2 copies
        wait_for(lambda: (logs / "omnitron.log.2").exists(), timeout=30,
                 describe=lambda: str(sorted(p.name for p in logs.iterdir())))
        wait_for(lambda: (logs / "spew-0.log.2").exists(), timeout=30,
                 describe=lambda: str(sorted(p.name for p in logs.iterdir())))
        assert cli("down", home=home).returncode == 0
        wait_for(lambda: not is_alive(pid), timeout=10)
    finally:
        kill_if_alive(leftovers)
    daemon_files = sorted(p.name for p in logs.iterdir() if p.name.startswith("omnitron.log"))
    assert daemon_files == ["omnitron.log", "omnitron.log.1", "omnitron.log.2"]
    text = "".join((logs / name).read_text(errors="replace") for name in daemon_files)
    assert "app-line" not in text, "app output was copied into the daemon's log"
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "daemon_stopped" in events and "state_changed" in events
    for name in daemon_files:
        assert (logs / name).stat().st_size < 4096 + 4096, f"{name} is far past max_size"
