"""Prints READY (with its instance and port) and sleeps until signalled."""
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"READY instance={os.environ.get('OMNITRON_INSTANCE')} port={os.environ.get('PORT')}", flush=True)
while True:
    time.sleep(3600)
