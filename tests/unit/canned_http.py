"""A real socket server, in a thread, that answers each HTTP request from a function: for client and CLI tests."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# A responder returns the raw response bytes, or None to close the connection without answering.
Responder = Callable[[Request], bytes | None]


def json_response(status: int, document: object) -> bytes:
    """What starlette's JSONResponse sends through uvicorn: the body with its Content-Length."""
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}\r\ncontent-type: application/json\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def _read_request(conn: socket.socket) -> Request:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return Request(method, path, headers, body)


PING = {"ok": True, "pid": 41, "version": "0.1.0"}


class CannedServer:
    """Answers each request from `responder`; `GET /v1/ping`, which the client sends before every change,
    it answers itself (unless `answers_ping` is False) and counts in `pings`, not in `requests`."""

    def __init__(self, listener: socket.socket, responder: Responder, *, answers_ping: bool = True) -> None:
        self.listener = listener
        self.responder = responder
        self.answers_ping = answers_ping
        self.requests: list[Request] = []
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.listener], [], [], 0.05)
            if not readable:
                continue
            conn, _ = self.listener.accept()
            with conn:
                request = _read_request(conn)
                if self.answers_ping and (request.method, request.path) == ("GET", "/v1/ping"):
                    self.pings += 1
                    conn.sendall(json_response(200, PING))
                    continue
                self.requests.append(request)
                response = self.responder(request)
                if response is not None:
                    conn.sendall(response)

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@contextmanager
def unix_server(path: str, responder: Responder, *, answers_ping: bool = True) -> Iterator[CannedServer]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    with CannedServer(listener, responder, answers_ping=answers_ping) as server:
        yield server


@contextmanager
def tcp_server(responder: Responder) -> Iterator[tuple[CannedServer, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    with CannedServer(listener, responder) as server:
        yield server, listener.getsockname()[1]
