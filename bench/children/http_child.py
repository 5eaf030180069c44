"""Bench child (probe target): serves 200 to GET and HEAD on 127.0.0.1:$PORT, announcing itself once it listens."""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from _ready import announce  # type: ignore[import-not-found]  # a sibling file: children run as scripts


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silence the per-request access log: it would turn the probe scenario into a log benchmark."""


server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
announce(sys.argv[1])
server.serve_forever()
