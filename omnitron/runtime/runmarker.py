"""The run marker: `OMNITRON_RUN_ID` in the environment of every process the daemon spawns, which ties a
process to one daemon run (recovery) and to one spawn of one instance (escaped grandchildren).

A marker is `<run id>-<spawn number>`: the run id is random per daemon run and recorded in state.json; the
spawn number makes each process of an instance (and what it forks, which inherits the environment) its own.
The kernel keeps a process's initial environment in /proc/<pid>/environ, readable by its user and root, so a
grandchild that left the process group still says where it came from, unless it exec'd with a cleared one.
"""

from __future__ import annotations

import itertools
import os

RUN_ID_VAR = "OMNITRON_RUN_ID"
_ENVIRON_READ_BOUND = 1 << 20  # the kernel's environment is at most a few MB; the marker is near the start


def new_run_id() -> str:
    return os.urandom(8).hex()


class RunMarker:
    """Hands out the markers of one daemon run: one per spawn."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self._spawns = itertools.count(1)

    def __repr__(self) -> str:
        return f"<RunMarker {self.run_id}>"

    def next_spawn(self) -> str:
        return f"{self.run_id}-{next(self._spawns)}"

    def owns(self, marker: str | None) -> bool:
        return is_of_run(marker, self.run_id)


def is_of_run(marker: str | None, run_id: str) -> bool:
    return marker is not None and bool(run_id) and marker.startswith(f"{run_id}-")


class MarkerUnreadable(Exception):
    """/proc/<pid>/environ exists but may not be read (another user's process, or a non-dumpable one)."""


def read_marker(pid: int) -> str | None:
    """The OMNITRON_RUN_ID a process started with; None when it has none or is gone.

    Raises MarkerUnreadable when the process exists but its environment is closed to us.
    """
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read(_ENVIRON_READ_BOUND)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:
        raise MarkerUnreadable(pid) from None
    except OSError:
        return None  # ESRCH while it exits, and the like: gone
    prefix = RUN_ID_VAR.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode("ascii", "replace")
    return None
