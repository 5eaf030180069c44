"""The raw limit of HTTP probing: one blocking GET per port per interval, plain sockets, nothing else.

usage: raw_prober.py BASE_PORT COUNT INTERVAL_S
"""

from __future__ import annotations

import socket
import sys
import time

REQUEST = b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"


def probe(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(REQUEST)
            head = sock.recv(64)
            while sock.recv(4096):
                pass
    except OSError:
        return False
    return head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")


def main() -> int:
    base, count, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    next_round = time.monotonic()
    while True:
        for port in range(base, base + count):
            probe(port)
        next_round += interval
        time.sleep(max(0.0, next_round - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
