"""Says which signal stopped it: on any of the signals named (default: every catchable one), appends
`LABEL SIGNAME` to FILE in one write and exits 0.

signal_report.py FILE LABEL [SIG ...]   (names with or without SIG: TERM, SIGUSR1)
Appends `LABEL ready` to FILE and prints READY once its handlers are in place, then sleeps.
"""

import os
import signal
import sys
import time
from types import FrameType

path, label, names = sys.argv[1], sys.argv[2], sys.argv[3:]


def append(text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{label} {text}\n".encode())
    finally:
        os.close(fd)


def report(signum: int, frame: FrameType | None) -> None:
    append(signal.Signals(signum).name)
    os._exit(0)


if names:
    wanted = [signal.Signals[n.upper() if n.upper().startswith("SIG") else "SIG" + n.upper()] for n in names]
else:
    wanted = [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]
for signum in wanted:
    signal.signal(signum, report)
append("ready")
print("READY", flush=True)
while True:
    time.sleep(3600)
