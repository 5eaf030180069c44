"""`omnitron status` must stay fast: building the CLI parser imports no server, model or process library."""

from __future__ import annotations

import json
import subprocess
import sys

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
