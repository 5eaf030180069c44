"""A tiny HTTP app for probe tests: GET /health is 200, or 500 while the file named by --fail-file exists.

Listens on 127.0.0.1:$PORT (or the port given with --port; 0 picks a free one), writes the bound port to
--port-file (atomically) if given, prints READY with its instance and port, and exits 0 on SIGTERM.
Other paths: /redirect answers 302 to /health; anything else is 404.
"""

import argparse
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
parser.add_argument("--fail-file", default=None)
parser.add_argument("--port-file", default=None)
args = parser.parse_args()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            failing = args.fail_file is not None and os.path.exists(args.fail_file)
            self._answer(500 if failing else 200, b"failing\n" if failing else b"ok\n")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._answer(404, b"not found\n")

    do_HEAD = do_GET

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *log_args: object) -> None:
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = HTTPServer(("127.0.0.1", args.port), Handler)
port = server.server_address[1]
if args.port_file:
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)
print(f"READY instance={os.environ.get('OMNITRON_INSTANCE')} port={port}", flush=True)
server.serve_forever()
