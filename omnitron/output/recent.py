"""The last lines an instance wrote, read from its log file (for hook payloads and `omnitron inspect`)."""

from __future__ import annotations

import os
from pathlib import Path

from omnitron.output.logfile import parse_line, rotated_path

_BLOCK = 64 * 1024


def recent_lines(path: Path, count: int) -> list[dict[str, str]]:
    """Up to `count` last complete lines of the log (its newest rotated file too, when the current one is
    short), oldest first, as `{"ts", "stream", "line"}`; none when there is no log yet. Blocking: call it off
    the event loop."""
    lines: list[bytes] = []
    for index in (0, 1):
        if len(lines) >= count:
            break
        try:
            with open(rotated_path(path, index), "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - _BLOCK * max(1, count // 100 + 1)))
                data = handle.read()
        except FileNotFoundError:
            continue
        older = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
        if size > len(data) and older:
            older = older[1:]  # the first one may be cut
        lines = older[-(count - len(lines)):] + lines if count > len(lines) else lines
    out = []
    for raw in lines[-count:] if count else []:
        parsed = parse_line(raw)
        out.append({"ts": parsed.ts, "stream": parsed.stream, "line": parsed.line.decode("utf-8", "replace")})
    return out
