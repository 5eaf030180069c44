"""The alive handshake every bench child makes: READY_DIR/<pid> holds the child's CLOCK_MONOTONIC start time."""

from __future__ import annotations

import os
import time


def announce(ready_dir: str) -> None:
    """Write the start time to a temp name, then rename it, so a reader never sees a half-written file."""
    stamp = time.monotonic()
    pid = os.getpid()
    tmp = os.path.join(ready_dir, f".{pid}.tmp")
    with open(tmp, "w") as handle:
        handle.write(repr(stamp))
    os.rename(tmp, os.path.join(ready_dir, str(pid)))
