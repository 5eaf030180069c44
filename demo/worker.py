"""Demo worker: logs a line every few seconds until told to stop."""

from __future__ import annotations

import os
import signal
import sys
import time

INTERVAL_S = float(os.environ.get("WORK_INTERVAL", "3"))


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    jobs = 0
    print(f"worker started (pid {os.getpid()})", flush=True)
    while True:
        time.sleep(INTERVAL_S)
        jobs += 1
        print(f"processed job {jobs}", flush=True)


if __name__ == "__main__":
    main()
