"""`[apps.scaling]` in `omnitron check`: every bad combination named with its location, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

APP = '[[apps]]\nname = "worker"\ncommand = "sleep 60"\n'


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "omnitron.toml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "omnitron", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("scaling", "location", "message"), [
    ("min = 3\nmax = 2\ntarget_cpu = 70", "apps[0].scaling", "min (3) is greater than max (2)"),
    ("max = 4", "apps[0].scaling", "set at least one signal"),
    ('max = 4\nqueue = { exec = "redis-cli llen jobs" }', "apps[0].scaling.queue.per_instance", "missing"),
    ('max = 4\nqueue = { per_instance = 10 }', "apps[0].scaling.queue", "set exactly one of exec or http"),
    ("min = 0\nmax = 4\ntarget_cpu = 70", "apps[0].scaling", "min = 0 needs a queue signal"),
    ("max = 4\ntarget_cpu = 0", "apps[0].scaling.target_cpu", "greater than 0"),
])
def test_bad_scaling_is_refused_with_its_location(tmp_path: Path, scaling: str, location: str, message: str) -> None:
    result = check(tmp_path, APP + "[apps.scaling]\n" + scaling + "\n")
    assert result.returncode == 2, result.stdout + result.stderr
    line = next((ln for ln in result.stderr.splitlines() if location in ln), "")
    assert message in line, result.stderr


def test_instances_outside_min_max_is_refused(tmp_path: Path) -> None:
    result = check(tmp_path, APP + "instances = 9\n[apps.scaling]\nmax = 4\ntarget_cpu = 70\n")
    assert result.returncode == 2
    assert "instances = 9 is outside [apps.scaling] min..max (1..4)" in result.stderr


def test_valid_scaling_starts_at_min_without_instances(tmp_path: Path) -> None:
    result = check(tmp_path, APP + '[apps.scaling]\nmin = 2\nmax = 6\ntarget_cpu = 70\n'
                               'queue = { http = "http://127.0.0.1:9/depth", per_instance = 100 }\n')
    assert (result.returncode, result.stdout.split(": ", 1)[1]) == (0, "OK (1 app, 2 instances)\n"), result.stderr
