"""Bench child: announces itself in READY_DIR, then sleeps until a signal ends it."""

from __future__ import annotations

import signal
import sys

from _ready import announce  # type: ignore[import-not-found]  # a sibling file: children run as scripts

announce(sys.argv[1])
while True:
    signal.pause()
