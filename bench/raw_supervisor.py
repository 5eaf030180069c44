"""The raw limit: posix_spawn N children, respawn each at once on death, copy their output to files, nothing else.

usage: raw_supervisor.py --instances N --log-dir DIR [--port BASE] -- ARGV...

Every instance gets one pipe for stdout and stderr, copied with plain os.read/os.write to DIR/<i>.log.
Deaths are noticed through SIGCHLD (a wakeup fd in the same selector) and waitpid(-1, WNOHANG).
SIGTERM or SIGINT: SIGTERM to every child, wait for all of them, exit 0.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import signal
import sys

CHUNK = 65536


class Raw:
    def __init__(self, argv: list[str], log_dir: str, port: int | None) -> None:
        found = shutil.which(argv[0])
        if found is None:
            raise SystemExit(f"raw_supervisor: {argv[0]} not found (give a path or fix PATH)")
        self.path = found
        self.argv = argv
        self.log_dir = log_dir
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.pid_to_index: dict[int, int] = {}
        self.logs: dict[int, int] = {}
        self.stopping = False

    def spawn(self, index: int) -> None:
        read_end, write_end = os.pipe()
        env = dict(os.environ)
        if self.port is not None:
            env["PORT"] = str(self.port + index)
        actions = [(os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_DUP2, write_end, 2)]
        pid = os.posix_spawn(self.path, self.argv, env, file_actions=actions)
        os.close(write_end)
        self.pid_to_index[pid] = index
        if index not in self.logs:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            self.logs[index] = os.open(os.path.join(self.log_dir, f"{index}.log"), flags, 0o600)
        self.selector.register(read_end, selectors.EVENT_READ, index)

    def copy(self, fd: int, index: int) -> None:
        data = os.read(fd, CHUNK)
        if not data:
            self.selector.unregister(fd)
            os.close(fd)
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self.logs[index], view) :]

    def reap(self) -> None:
        while self.pid_to_index:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            index = self.pid_to_index.pop(pid, None)
            if index is not None and not self.stopping:
                self.spawn(index)

    def shutdown(self) -> None:
        self.stopping = True
        for pid in list(self.pid_to_index):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        while self.pid_to_index:
            pid, _status = os.waitpid(-1, 0)
            self.pid_to_index.pop(pid, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    raw = Raw(argv, args.log_dir, args.port)

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    raw.selector.register(wake_read, selectors.EVENT_READ, None)

    for index in range(args.instances):
        raw.spawn(index)
    while True:
        for key, _mask in raw.selector.select():
            if key.data is not None:
                raw.copy(key.fd, key.data)
                continue
            signums = os.read(wake_read, 512)
            if signal.SIGTERM in signums or signal.SIGINT in signums:
                raw.shutdown()
                return 0
            raw.reap()


if __name__ == "__main__":
    sys.exit(main())
