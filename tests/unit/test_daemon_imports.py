"""The daemon's HTTP stack loads only the uvicorn it runs (issue 18: a long-lived daemon's memory).

Each check runs in a fresh interpreter: what a module pulls in depends on what was imported before it.
"""

from __future__ import annotations

import json
import subprocess
import sys

# uvicorn's command line (click), its reload supervisors (watchfiles, multiprocessing) and the WebSocket
# protocols: none of them serve the health port, the control socket or the dashboard.
NOT_LOADED = ("click", "watchfiles", "multiprocessing", "wsproto", "websockets", "uvicorn.main", "uvicorn.supervisors")

SERVE_ONE_REQUEST = """
import asyncio, json, socket, sys
from omnitron.http.guard import HEALTH_LIMITS
from omnitron.http.server import EmbeddedServer

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

async def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = EmbeddedServer(app, sock, HEALTH_LIMITS)
    task = asyncio.create_task(server.serve())
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*sock.getsockname()), 10)
    writer.write(b"GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    server.stop()
    await asyncio.wait_for(task, 10)
    print(json.dumps({"status": answer.split(b"\\r\\n")[0].decode(), "modules": sorted(sys.modules)}))

asyncio.run(main())
"""

PUBLIC_NAMES = """
import json
import omnitron.http.server
import uvicorn, uvicorn.config, uvicorn.main
print(json.dumps([uvicorn.run is uvicorn.main.run, uvicorn.Server is uvicorn.main.Server,
                  uvicorn.Config is uvicorn.config.Config, callable(uvicorn.main.main)]))
"""


def _run(code: str) -> object:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_serving_a_request_loads_no_uvicorn_command_line_reload_or_websocket_code() -> None:
    seen = _run(SERVE_ONE_REQUEST)
    assert isinstance(seen, dict)
    assert seen["status"] == "HTTP/1.1 200 OK"
    loaded = set(seen["modules"])
    unwanted = sorted(name for name in loaded if any(name == m or name.startswith(m + ".") for m in NOT_LOADED))
    assert unwanted == [], f"the embedded server imported {unwanted}"
    assert "uvicorn.protocols.http.h11_impl" in loaded  # the protocol it serves with


def test_uvicorns_public_names_still_resolve_after_the_partial_load() -> None:
    assert _run(PUBLIC_NAMES) == [True, True, True, True]


def test_the_daemon_before_its_first_spawn_loads_no_http_client() -> None:
    # urllib.request and http.client only serve a scaling queue URL or a webhook; the first spawns wait for
    # every import before them (issue 18, cold start).
    loaded = _run("import json, sys; import omnitron.runtime.daemon; print(json.dumps(sorted(sys.modules)))")
    assert isinstance(loaded, list)
    assert [m for m in ("urllib.request", "http.client") if m in loaded] == []
