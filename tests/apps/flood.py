"""An unkillable spewer: floods stdout and ignores SIGTERM, so only SIGKILL ends it.

The scenario follows supervisor's supervisor/tests/fixtures/unkillable_spew.py (supervisor is under a BSD-style
licence, see its LICENSES.txt).

flood.py FILE [PAUSE]: writes numbered lines (`more spewage N`) in batches of 100 whole lines, one write each,
as fast as it can or with PAUSE seconds between batches (0.001 is still 100 000 lines a second). After each
batch it stores the last number written, as 20 ASCII digits, at offset 0 of FILE: once it is killed, every line
up to that number has been handed to the pipe.
"""

import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
record = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
BATCH = 100
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
n = 0
while True:
    batch = b"".join(b"more spewage %d\n" % i for i in range(n, n + BATCH))
    view = memoryview(batch)
    while view:
        view = view[os.write(1, view) :]
    n += BATCH
    os.pwrite(record, b"%020d" % (n - 1), 0)
    if pause:
        time.sleep(pause)
