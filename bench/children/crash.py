"""Bench child: announces itself in READY_DIR (so starts can be counted), then exits 1 at once."""

from __future__ import annotations

import sys

from _ready import announce  # type: ignore[import-not-found]  # a sibling file: children run as scripts

announce(sys.argv[1])
sys.exit(1)
