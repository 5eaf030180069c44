"""Leaves N orphans for the nearest reaper, as tini's reaping stage does.

The scenario follows tini's test/reaping/stage_2.py (Copyright (c) 2015 Thomas Orozco, MIT licence).

orphans.py N GATE: a middle process starts N `cat`s and exits at once, so they are reparented to the daemon
(PID 1, or the child subreaper). Each `cat` reads a pipe whose write end only this process holds; once the
file GATE exists this process closes it, and every orphan exits at the same moment. Prints READY once the
middle process is reaped, then sleeps; exits 0 on SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
count, gate = int(sys.argv[1]), sys.argv[2]
read_end, write_end = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(write_end)
    for _ in range(count):
        subprocess.Popen(["cat"], stdin=read_end, stdout=subprocess.DEVNULL)
    os._exit(0)
os.close(read_end)
os.waitpid(middle, 0)
print("READY", flush=True)
while not os.path.exists(gate):
    time.sleep(0.02)
os.close(write_end)
print("GATE OPEN", flush=True)
while True:
    time.sleep(3600)
