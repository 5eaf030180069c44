"""Starts a grandchild that ignores SIGTERM, writes its PID to the file named by argv[1], then sleeps."""
import os
import subprocess
import sys
import time

IGNORE_TERM_FOREVER = "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(3600)"
child = subprocess.Popen([sys.executable, "-c", IGNORE_TERM_FOREVER])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(child.pid))

os.rename(sys.argv[1] + ".tmp", sys.argv[1])
print("READY", flush=True)
while True:
    time.sleep(3600)
