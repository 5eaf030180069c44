"""The benchmark harness cannot rot: its smallest mode runs every scenario on omnitron and the raw limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["cold_start", "restart", "idle", "status", "shutdown", "logs", "crash_loop", "probe"]
# Replacing an app under load through its shared socket, and scaling a pool: the raw supervisor does neither.
OMNITRON_ONLY = ["surge", "scaling"]


@pytest.mark.timeout(240)
def test_bench_n_small_measures_every_scenario_on_omnitron_and_raw(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--n-small", "--no-setup"]
    done = subprocess.run(
        [*argv, "--supervisors", "omnitron", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    document = json.loads((out / "latest.json").read_text())
    rows = document["rows"]
    errors = [(r["scenario"], r["supervisor"], r["error"]) for r in rows if r["error"]]
    assert errors == []
    for supervisor, expected in (("omnitron", SCENARIOS + OMNITRON_ONLY), ("raw", SCENARIOS)):
        measured = {r["scenario"] for r in rows if r["supervisor"] == supervisor and r["median"] is not None}
        assert measured == set(expected), f"{supervisor} measured {sorted(measured)}"
        lost = [r["median"] for r in rows if r["supervisor"] == supervisor and r["metric"] == "lines lost"]
        assert lost == [0]
    assert document["versions"].keys() == {"raw", "omnitron"}

    table = (out / "latest.md").read_text()
    for title in (
        "Cold start",
        "Restart latency",
        "Idle overhead",
        "Status latency",
        "Graceful shutdown",
        "Log throughput",
        "Crash loop",
        "Probe cost",
        "Zero-downtime restart",
        "Scaling reaction",
    ):
        assert f"## {title}" in table
    assert "| scenario | raw | omnitron |" in table
