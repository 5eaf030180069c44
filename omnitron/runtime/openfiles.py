"""The daemon's open-files limit (RLIMIT_NOFILE): raised to the hard limit at start, read by the listeners'
descriptor reserve (http/guard.py). Stdlib only: the daemon calls it before anything is spawned."""

from __future__ import annotations

import resource


def open_files_limit() -> int:
    """The soft limit now."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft limit to the hard one, as supervisord's `minfds` does (at a soft 256, `scale app 100`
    left 40 instances fatal): (before, after). Apps inherit it. An unlimited hard limit is left alone (the
    kernel's nr_open caps it anyway and setrlimit would refuse RLIM_INFINITY)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, hard
