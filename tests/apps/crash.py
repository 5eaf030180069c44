"""Exits with code N (default 1) after T seconds (default 0); optionally appends its PID to a file first."""
import os
import sys
import time

code = int(sys.argv[1]) if len(sys.argv) > 1 else 1
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
if len(sys.argv) > 3:
    with open(sys.argv[3], "a") as f:
        f.write(f"{os.getpid()}\n")
time.sleep(delay)
print("exiting", code, flush=True)
sys.exit(code)
