"""A line every INTERVAL seconds, forever: `N - more spewage` (supervisord's spew.py fixture, for issue 1298),
or with --unicode `N - hash=57d94b…381088` written as UTF-8 bytes whatever the locale (its issue 1231).

ticker.py INTERVAL [--unicode]; exits 0 on SIGTERM.
"""

import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
interval = float(sys.argv[1])
text = "hash=57d94b\u2026381088" if "--unicode" in sys.argv else "more spewage"
out = sys.stdout.buffer
i = 1
while True:
    out.write(f"{i} - {text}\n".encode())
    out.flush()
    i += 1
    time.sleep(interval)
