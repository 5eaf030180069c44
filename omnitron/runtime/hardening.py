"""What the daemon does to itself at start so a same-user app cannot read its secrets (issue 13 item 13):
it takes the store key out of its environment, wiping it from /proc/<pid>/environ too, and turns
non-dumpable, which makes its /proc files (environ, mem, fd) root-only and refuses ptrace from its user."""

from __future__ import annotations

import ctypes
import os
from typing import Final

import structlog

from omnitron.home.secrets import KEY_ENV

log = structlog.get_logger()
_PR_SET_DUMPABLE: Final = 4
_PR_GET_DUMPABLE: Final = 3
# /proc/<pid>/stat fields 50 and 51 (1-based): where the kernel keeps the initial environment.
_ENV_START_FIELD: Final = 50


def take_secrets_key() -> str:
    """OMNITRON_SECRETS_KEY's value ("" when unset), after removing it from this process for good.

    `os.environ.pop` (unsetenv) only edits libc's table: /proc/<pid>/environ shows the environment block
    the kernel copied in at exec, so the value's bytes there are overwritten in place as well.
    """
    value = os.environ.pop(KEY_ENV, "")
    if value:
        _wipe_initial_environ(KEY_ENV)
    return value


def _wipe_initial_environ(name: str) -> bool:
    try:
        with open("/proc/self/stat", "rb") as handle:
            stat = handle.read()
        fields = stat[stat.rfind(b")") + 2:].split()
        # fields[0] is field 3 (state), so field N is fields[N - 3]
        start, end = int(fields[_ENV_START_FIELD - 3]), int(fields[_ENV_START_FIELD - 2])
    except (OSError, ValueError, IndexError):
        return False
    if not 0 < start < end:
        return False
    block = ctypes.string_at(start, end - start)
    needle = name.encode() + b"="
    if block.startswith(needle):
        pos = 0
    else:
        found = block.find(b"\0" + needle)
        if found < 0:
            return False
        pos = found + 1
    value_start = pos + len(needle)
    value_end = block.find(b"\0", value_start)
    if value_end < 0:
        value_end = len(block)
    ctypes.memset(start + value_start, 0, value_end - value_start)
    return True


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): no core dumps, and /proc/<pid>/{environ,mem,fd,maps} owned by root."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def is_dumpable() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 1)


def harden() -> str:
    """Take the store key, then turn non-dumpable; returns the key for the secrets store."""
    key = take_secrets_key()
    if not make_undumpable():
        log.warning("dumpable_unchanged", reason="prctl(PR_SET_DUMPABLE) failed: same-user apps can read "
                    "this daemon's /proc files")
    return key
