"""Bench child: prepares N numbered lines of 40 bytes, announces itself, writes them to stdout at once, sleeps.

The lines are built before the announcement, so the measured time is the pipe and the supervisor, not the
formatting of a million lines in Python.
"""

from __future__ import annotations

import os
import signal
import sys

from _ready import announce  # type: ignore[import-not-found]  # a sibling file: children run as scripts

WRITE_SIZE = 64_000  # 1,600 lines: one pipe buffer's worth per write call


def line(number: int) -> bytes:
    return b"spew %012d %s\n" % (number, b"x" * 21)  # 5 + 12 + 1 + 21 + 1 = 40 bytes


def main() -> None:
    payload = memoryview(b"".join(line(n) for n in range(int(sys.argv[2]))))
    announce(sys.argv[1])
    while payload:
        payload = payload[os.write(1, payload[:WRITE_SIZE]) :]
    while True:
        signal.pause()


main()
