"""docs/cli.md's sample sessions, run for real: every console block marked `<!-- sample: checked -->` is
replayed command by command against a real daemon, and its output must match the page's (issue #20 item 9:
the samples had drifted from the code).

Only what changes from run to run is masked before comparing: numbers (PIDs, uptimes, sizes, percentages,
delays) become N, runs of spaces become one (column widths follow the numbers), and the run's own paths
become the page's `/app` and `/root/.omnitron`. Words, order and punctuation must match exactly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon, app_argv, cli_status, write_config
from tests.helpers import wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
MARK = "<!-- sample: checked -->"
_NUMBER = re.compile(r"\d+(?:\.\d+)*(?:e[+-]?\d+)?[A-Za-z]?")

CONFIG = f"""
[daemon]
health_port = 0
health_host = "127.0.0.1"

[[apps]]
name = "api"
command = {app_argv("signal_echo.py")}
instances = 2
min_uptime = "100ms"
health = {{ exec = "true", interval = "100ms" }}
liveness = {{ exec = "true", interval = "1s" }}

[[apps]]
name = "worker"
command = {app_argv("crash.py", 1)}
min_uptime = "1s"
backoff = {{ initial = "1h", max = "1h", jitter = 0 }}

[[apps]]
name = "migrate"
command = {app_argv("crash.py", 0)}
restart = "never"
"""


def samples(text: str) -> list[tuple[int, list[tuple[str, list[str]]]]]:
    """Each marked block as (line number, [(command, expected output lines)])."""
    blocks = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        assert lines[index + 1] == "```console", f"docs/cli.md:{index + 1}: {MARK} must precede a console block"
        steps: list[tuple[str, list[str]]] = []
        for body in lines[index + 2 :]:
            if body == "```":
                break
            if body.startswith("$ "):
                steps.append((body[2:], []))
            else:
                steps[-1][1].append(body)
        blocks.append((index + 1, steps))
    return blocks


def normalise(lines: list[str], replacements: dict[str, str]) -> list[str]:
    out = []
    for line in lines:
        for real, shown in replacements.items():
            line = line.replace(real, shown)
        out.append(" ".join(_NUMBER.sub("N", line).split()))
    return out


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path, Path]]:
    """A short root (the header must fit 80 columns as /app/omnitron.toml does) with app/, home/ and a bin/
    that puts `omnitron` on PATH as this checkout's CLI."""
    root = Path(tempfile.mkdtemp(prefix="oc-", dir="/tmp"))
    (root / "app").mkdir()
    (root / "bin").mkdir()
    shim = root / "bin" / "omnitron"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m omnitron "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("OMNITRON_HOME", str(root / "home"))
    try:
        yield root / "app", root / "home", root / "bin"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_marked_samples_of_cli_md_match_a_real_run(stage: tuple[Path, Path, Path]) -> None:
    app_dir, home, bin_dir = stage
    blocks = samples(DOC.read_text())
    assert len(blocks) >= 4, "the marked samples went missing from docs/cli.md"
    config = write_config(app_dir, CONFIG)
    daemon = Daemon(config, home)
    try:
        daemon.wait_started()

        def settled() -> bool:
            states = {(a["name"], a["instance"]): (a["state"], a["healthy"]) for a in cli_status(home)["apps"]}
            return states == {("api", 0): ("running", True), ("api", 1): ("running", True),
                              ("worker", 0): ("backoff", None), ("migrate", 0): ("completed", None)}

        wait_for(settled, timeout=20, describe=lambda: str(cli_status(home)["apps"]))
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OMNITRON_HOME": str(home)}
        replacements = {str(app_dir): "/app", str(home): "/root/.omnitron"}
        for line_number, steps in blocks:
            for command, expected in steps:
                result = subprocess.run(["bash", "-c", command], cwd=app_dir, env=env, capture_output=True,
                                        text=True, timeout=120)
                seen = normalise((result.stdout + result.stderr).splitlines(), replacements)
                assert seen == normalise(expected, {}), (
                    f"docs/cli.md:{line_number}: `{command}` printed\n{result.stdout}{result.stderr}")
    finally:
        daemon.stop()
