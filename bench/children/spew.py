"""Bench child: announces itself, writes N numbered lines of 40 bytes to stdout as fast as it can, then sleeps."""

from __future__ import annotations

import os
import signal
import sys

from _ready import announce  # type: ignore[import-not-found]  # a sibling file: children run as scripts

LINES_PER_WRITE = 1600  # 64,000 bytes: one pipe buffer's worth per write call


def line(number: int) -> bytes:
    return b"spew %012d %s\n" % (number, b"x" * 21)  # 5 + 12 + 1 + 21 + 1 = 40 bytes


def main() -> None:
    announce(sys.argv[1])
    total = int(sys.argv[2])
    for start in range(0, total, LINES_PER_WRITE):
        chunk = b"".join(line(n) for n in range(start, min(start + LINES_PER_WRITE, total)))
        view = memoryview(chunk)
        while view:
            view = view[os.write(1, view) :]
    while True:
        signal.pause()


main()
