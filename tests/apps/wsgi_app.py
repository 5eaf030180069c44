"""A tiny WSGI app for gunicorn (`gunicorn --bind fd://${LISTEN_FD} wsgi_app:app`): answers `PID INSTANCE`."""

import os
from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # the worker's PID is a grandchild of the daemon; the instance is what the test checks
    body = f"{os.getpid()} {os.environ.get('OMNITRON_INSTANCE')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
