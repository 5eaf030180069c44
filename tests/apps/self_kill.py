"""Horust's restart-after-signal scenario: the first start kills itself with a signal.

The scenario follows Horust's tests/section_restart.rs (Copyright (c) 2020 Federico Ponzi, MIT licence).

self_kill.py FILE SIG: appends its PID to FILE; if it is the first line there, it kills itself with SIG (TERM,
KILL, SEGV, ABRT...; no core file is written); any later start prints READY and sleeps (exits 0 on SIGTERM).
"""

import os
import resource
import signal
import sys
import time

path, name = sys.argv[1], sys.argv[2]
with open(path, "a") as f:
    f.write(f"{os.getpid()}\n")
with open(path) as f:
    first = len(f.read().split()) == 1
if first:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    print("dying by", name, flush=True)
    os.kill(os.getpid(), signal.Signals["SIG" + name])
    time.sleep(10)
    sys.exit("still alive after the signal")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("READY", flush=True)
while True:
    time.sleep(3600)
