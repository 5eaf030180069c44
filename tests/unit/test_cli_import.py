"""`omnitron status` must stay fast: building the CLI parser imports no server, model or process library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import omnitron

HEAVY = ("uvicorn", "starlette", "pydantic", "pydantic_settings", "anyio", "psutil", "omnitron.config.model", "httpx")

CODE = """
import json, sys
import omnitron.cli
omnitron.cli.build_parser()
import omnitron.cli.client, omnitron.cli.statusview
print(json.dumps(sorted(sys.modules)))
"""


def test_building_the_parser_and_the_client_path_import_nothing_heavy() -> None:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=30, check=True)
    loaded = set(json.loads(result.stdout))
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY or name in HEAVY)
    assert heavy == [], f"heavy modules imported by the CLI's client path: {heavy}"
    # http.client alone costs ~28 ms; the client speaks HTTP over a raw socket instead.
    assert "http.client" not in loaded
    assert "omnitron.cli.control_cmds" in loaded


FAST_COMMANDS = """
import json, sys
import omnitron.cli
codes = [omnitron.cli.main(["status"]), omnitron.cli.main(["probe"]), omnitron.cli.main(["stop", "api:0"])]
print(json.dumps({"codes": codes, "modules": sorted(sys.modules)}))
"""


def test_status_probe_and_stop_without_a_daemon_import_no_pathlib(home: Path) -> None:
    # -S: without site, the editable install's import hook, which imports pathlib itself, is not loaded.
    env = {**os.environ, "PYTHONPATH": str(Path(omnitron.__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-S", "-c", FAST_COMMANDS], env=env, capture_output=True, text=True, timeout=30, check=True
    )
    seen = json.loads(result.stdout)
    assert seen["codes"] == [3, 3, 3], result.stderr  # each one got as far as looking for the daemon
    assert "pathlib" not in seen["modules"]
