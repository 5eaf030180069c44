"""Where no engine can run, the container tests skip with the reason; under OMNITRON_REQUIRE_DOCKER=1 (CI) they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_files import REPO


def run_without_docker(tmp_path: Path, *, require: bool) -> subprocess.CompletedProcess[str]:
    """One container test in a child pytest whose PATH holds no `docker`."""
    env = {k: v for k, v in os.environ.items() if k != "OMNITRON_REQUIRE_DOCKER"}
    env["PATH"] = str(tmp_path)  # an empty folder: no docker command
    if require:
        env["OMNITRON_REQUIRE_DOCKER"] = "1"
    target = "tests/container/test_image_runtime.py::test_the_image_has_oci_labels_and_no_pip_or_setuptools"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(150)
def test_no_engine_skips_with_the_reason(tmp_path: Path) -> None:
    result = run_without_docker(tmp_path, require=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "no `docker` command" in result.stdout, result.stdout


@pytest.mark.timeout(150)
def test_no_engine_fails_where_docker_is_required(tmp_path: Path) -> None:
    result = run_without_docker(tmp_path, require=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "OMNITRON_REQUIRE_DOCKER=1 but the container tests cannot run: no `docker` command" in result.stdout
