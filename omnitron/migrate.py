"""Release commands (`omnitron infra migrate`): run `[infra].migrate` once, in order, under a lock on the home."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from omnitron.errors import OmnitronError
from omnitron.home.paths import Home
from omnitron.home.pidlock import hold_lock
from omnitron.runtime.appenv import daemon_env

if TYPE_CHECKING:
    from omnitron.config.load import LoadedConfig

COMMAND_NOT_FOUND = 127
NOT_EXECUTABLE = 126


def run_migrations(loaded: LoadedConfig, home: Home, *, out: BinaryIO, err: BinaryIO) -> int:
    """Run each release command with cwd = the config's directory; the first failure's status, or 0.

    The commands get the daemon's environment (without the store key) plus every stored secret that some
    app lists. Their stdout goes to `out` with omnitron's progress lines, their stderr is inherited;
    omnitron's own errors and warnings (a command that cannot run, the failure that stops the run, secrets
    missing from the store) go to `err`. A signal death N is 128+N.
    """
    commands = loaded.ecosystem.infra.migrate
    if not commands:
        _say(out, "no release commands ([infra].migrate is empty)")
        return 0
    with migrate_lock(home):
        env = migration_env(loaded, home, os.environ, err=err)
        cwd = Path(loaded.path).parent
        for number, argv in enumerate(commands, start=1):
            label = f"release command {number}/{len(commands)}"
            _say(out, f"{label}: {shlex.join(argv)}")
            status = _run_one(argv, cwd=cwd, env=env, out=out, err=err, label=label)
            if status != 0:
                rest = len(commands) - number
                skipped = f"; the {rest} after it did not run" if rest else ""
                _say(out, f"{label} failed with exit status {status}{skipped} "
                          "(fix it, then run `omnitron infra migrate` again)", err=err)
                return status
        _say(out, f"all {len(commands)} release commands succeeded")
    return 0


def migration_env(loaded: LoadedConfig, home: Home, base_env: Mapping[str, str], *, err: BinaryIO) -> dict[str, str]:
    """`base_env` minus daemon-only vars, plus each stored secret any app lists (missing ones are noted)."""
    from omnitron.home.secrets import SecretStore

    store = SecretStore(home)
    names = list(dict.fromkeys(name for app in loaded.ecosystem.apps for name in app.secrets))
    present = [name for name in names if store.has(name)]
    missing = [name for name in names if name not in present]
    if missing:
        _say(err, f"note: secrets not in the store, not set for release commands: {', '.join(missing)}")
    env = daemon_env(base_env)
    env.update(store.load_many(present))
    return env


@contextmanager
def migrate_lock(home: Home) -> Iterator[None]:
    """Hold an exclusive flock on the home's migrate lock; OmnitronError if another migration holds it."""
    home.ensure()
    fd = hold_lock(
        home.migrate_lock,
        lambda holder: OmnitronError(
            f"another migration (PID {holder}) is running on {home.root}",
            "wait for it to finish, then run `omnitron infra migrate` again",
        ),
    )
    try:
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _run_one(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], out: BinaryIO, err: BinaryIO,
             label: str) -> int:
    out.flush()
    stdout_fd = _fileno(out)
    try:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdout=stdout_fd if stdout_fd is not None else subprocess.PIPE
        )
    except FileNotFoundError:
        _say(out, f"{label}: command not found: {argv[0]} (install it or fix [infra].migrate)", err=err)
        return COMMAND_NOT_FOUND
    except PermissionError:
        _say(out, f"{label}: permission denied: {argv[0]} (make it executable or fix [infra].migrate)", err=err)
        return NOT_EXECUTABLE
    try:
        if proc.stdout is not None:
            with proc.stdout:
                _copy(proc.stdout, out)
        returncode = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the command too (same process group): let it finish its own cleanup first.
        proc.wait()
        raise
    return 128 - returncode if returncode < 0 else returncode


def _copy(source: IO[bytes], out: BinaryIO) -> None:
    while chunk := source.read1(65536):  # type: ignore[attr-defined]
        out.write(chunk)
        out.flush()


def _fileno(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _say(out: BinaryIO, message: str, *, err: BinaryIO | None = None) -> None:
    """One `omnitron: ` line on `out`, or on `err` when given (an error); `out` is flushed first either way,
    so the two streams stay in order on a terminal."""
    out.flush()
    stream = out if err is None else err
    stream.write(f"omnitron: {message}\n".encode())
    stream.flush()
