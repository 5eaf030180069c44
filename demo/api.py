"""Demo API: a small Starlette app serving /health (readiness), /live (liveness) and /.

Under omnitron with `listen`, every instance serves the one socket omnitron passes as fd 3 (LISTEN_FD);
run on its own, it binds $PORT itself.

/health is where an app would check what it needs to serve (its database, a cache): failing it takes the
instance out of /readyz and never restarts it. /live only says the process still answers: failing it gets
the instance restarted, so it must not depend on anything outside the process.
"""

from __future__ import annotations

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INSTANCE = os.environ.get("OMNITRON_INSTANCE", "0")


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "instance": INSTANCE})


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive", "instance": INSTANCE})


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "from omnitron", "instance": INSTANCE, "pid": os.getpid()})


app = Starlette(routes=[Route("/health", health), Route("/live", live), Route("/", hello)])

if __name__ == "__main__":
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and "LISTEN_FD" in os.environ:
        # omnitron's shared socket; uvicorn stops accepting on SIGTERM and finishes the requests in flight
        print(f"api instance {INSTANCE} serving the shared socket on :{os.environ.get('PORT')}", flush=True)
        uvicorn.run(app, fd=int(os.environ["LISTEN_FD"]), log_level="warning", access_log=False)
    else:
        # 0.0.0.0: inside a container the platform's router reaches the app from outside the loopback.
        host = os.environ.get("HOST", "0.0.0.0")
        port = int(os.environ.get("PORT", "3001"))
        print(f"api instance {INSTANCE} listening on {host}:{port}", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
