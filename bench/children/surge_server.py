"""Bench child for bench/listen_surge.py: an HTTP/1.1 server answering its PID, on one of three sockets:

- systemd socket activation (omnitron `listen`): fd 3, with LISTEN_PID its own PID;
- `--fd N`: an inherited listening fd (circus `$(circus.sockets.NAME)`);
- `--port`: binds 127.0.0.1:$PORT itself (the per-instance-port baseline).

On SIGTERM it stops accepting, finishes the requests in flight (and answers what is already queued on the
connections it holds), then exits 0: the app's part of a graceful replacement.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive when the client asks for it
    timeout = 5  # an idle keep-alive connection does not hold up a stop

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without NODELAY, Nagle and the client's delayed ACK add ~40 ms
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set():
            self.send_header("Connection", "close")  # a keep-alive client moves to another instance
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


stopping = threading.Event()


def listening_socket() -> socket.socket:
    if "--fd" in sys.argv:
        return socket.socket(fileno=int(sys.argv[sys.argv.index("--fd") + 1]))
    if "--port" in sys.argv:
        sock = socket.create_server(("127.0.0.1", int(os.environ["PORT"])), backlog=1024)
        return sock
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("not socket-activated")
    return socket.socket(fileno=3)


def main() -> None:
    sock = listening_socket()
    sock.setblocking(False)  # every instance polls the shared socket; the losers of an accept get EAGAIN
    server = ThreadingHTTPServer(sock.getsockname()[:2], Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = False  # server_close() joins the request threads

    def stop(*_: object) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"READY {os.getpid()}", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


main()
