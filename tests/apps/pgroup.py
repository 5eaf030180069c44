"""tini's process group stage: ignores SIGUSR1 while its own child does not.

The scenario follows tini's test/pgroup/stage_1.py (Copyright (c) 2015 Thomas Orozco, MIT licence).

pgroup.py FILE: starts `sleep 1000` (in the same process group) with SIGUSR1 back at its default action,
and waits for it. When the child ends, appends how it ended to FILE (`child SIGUSR1`, `child exit 0`) and exits 0.
Prints READY once the child runs.
"""

import os
import shutil
import signal
import sys

signal.signal(signal.SIGUSR1, signal.SIG_IGN)
sleep = shutil.which("sleep")
assert sleep is not None
child = os.posix_spawn(sleep, ["sleep", "1000"], os.environ, setsigdef=[signal.SIGUSR1])
print("READY", child, flush=True)
_, status = os.waitpid(child, 0)
if os.WIFSIGNALED(status):
    how = signal.Signals(os.WTERMSIG(status)).name
else:
    how = f"exit {os.waitstatus_to_exitcode(status)}"
with open(sys.argv[1], "a") as f:
    f.write(f"child {how}\n")
sys.exit(0)
