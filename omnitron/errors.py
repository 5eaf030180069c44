"""Errors that reach the user: each names its cause, its fix and the exit code the CLI returns."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NO_DAEMON = 3


class OmnitronError(Exception):
    """An error the CLI prints as one line: `omnitron: <cause> (<fix>)`."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, cause: str, fix: str = "", exit_code: ExitCode | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        return f"{self.cause} ({self.fix})" if self.fix else self.cause


class ConfigError(OmnitronError):
    """A config that cannot be found or does not validate; `problems` holds one line per error."""

    exit_code = ExitCode.USAGE

    def __init__(self, cause: str, fix: str = "", problems: list[str] | None = None) -> None:
        super().__init__(cause, fix)
        self.problems = problems or []


class UsageError(OmnitronError):
    exit_code = ExitCode.USAGE


class DaemonNotRunning(OmnitronError):
    exit_code = ExitCode.NO_DAEMON


class DaemonNotAnswering(OmnitronError):
    """A daemon holds the home but does not answer on its control socket (stopped with SIGSTOP, wedged)."""

    exit_code = ExitCode.FAILED


class HomeLocked(OmnitronError):
    exit_code = ExitCode.FAILED


class SecretsError(OmnitronError):
    exit_code = ExitCode.FAILED


def file_error(path: str, error: OSError, action: str = "write") -> OmnitronError:
    """`cannot write PATH: No space left on device (free space …)`: the file, the OS's cause, and its fix."""
    import errno

    cause = f"cannot {action} {path}: {error.strerror or error}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "its filesystem is full: free space there (`df` shows it), or set OMNITRON_HOME to another filesystem"
    elif error.errno == errno.EROFS:
        fix = "its filesystem is read-only: set OMNITRON_HOME to a writable folder"
    elif error.errno in (errno.EACCES, errno.EPERM):
        fix = "run omnitron as the user that owns it, or fix its permissions"
    else:
        fix = f"check {path} and the filesystem it is on"
    return OmnitronError(cause, fix)
