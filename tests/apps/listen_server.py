"""A plain-Python HTTP server on the socket it was given (systemd socket activation: LISTEN_FDS, LISTEN_PID).

GET / answers `PID INSTANCE`; GET /env answers the LISTEN_* variables as JSON. It refuses to start (exit 3)
unless LISTEN_PID is its own PID and fd 3 is a listening socket. On SIGTERM it stops accepting, finishes
the requests in flight, and exits 0. Optional argv[1]: seconds each request takes (default 0).
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY_S = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if DELAY_S:
            time.sleep(DELAY_S)
        if self.path == "/env":
            body = json.dumps({k: v for k, v in os.environ.items() if k.startswith("LISTEN_")}).encode()
        else:
            body = f"{os.getpid()} {os.environ.get('OMNITRON_INSTANCE')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        print(f"not socket-activated: LISTEN_PID={os.environ.get('LISTEN_PID')} pid={os.getpid()}", flush=True)
        sys.exit(3)
    sock = socket.socket(fileno=3)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) != 1:
        print("fd 3 is not a listening socket", flush=True)
        sys.exit(3)
    # Every instance polls the one socket and all wake on a connection: only one wins the accept, so the
    # others must get EAGAIN rather than block (O_NONBLOCK is shared by every holder of the socket).
    sock.setblocking(False)
    server = ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = False  # server_close() joins the request threads: in-flight requests finish
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"READY pid={os.getpid()}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    print("BYE", flush=True)


main()
