"""Fast output for capture tests.

spew.py count N [LEN]   N numbered lines (`00000000 xxx...`, LEN bytes each without the newline) as fast as possible
spew.py long BYTES      `before`, one line of BYTES bytes, `after`
spew.py invalid         a line holding bytes that are not UTF-8, between `before` and `after`
spew.py exit N          N numbered lines then `last-without-newline` (no newline), then exits at once (code 3)
spew.py both N          `out <i>` on stdout and `err <i>` on stderr, N of each
spew.py quoted          lines with quotes, backslashes, tabs and non-ASCII text (no control characters)
spew.py control         the quoted lines plus ANSI colours, a carriage return and a byte that is not UTF-8
"""

import os
import sys

QUOTED = [b'say "hi"', b"back\\slash \\n not a newline", b"tab\there", "h\u00e9llo \u2713 \u2028".encode(), b"", b"{}"]
CONTROL = [*QUOTED, b"\x1b[31mred\x1b[0m", b"cr\rhere", b"nul\x00", b"bad \xff"]


def numbered(start: int, stop: int, length: int) -> bytes:
    pad = b"x" * max(0, length - 9)
    return b"".join(b"%08d %s\n" % (i, pad) for i in range(start, stop))


def count(n: int, length: int) -> None:
    out = sys.stdout.buffer
    for start in range(0, n, 2000):
        out.write(numbered(start, min(n, start + 2000), length))
    out.flush()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "count":
        count(int(argv[2]), int(argv[3]) if len(argv) > 3 else 40)
    elif mode == "long":
        write_all(1, b"before\n" + b"a" * int(argv[2]) + b"\nafter\n")
    elif mode == "invalid":
        write_all(1, b"before\nbad \xff\xfe \xc3\x28 end\nafter\n")
    elif mode == "exit":
        write_all(1, numbered(0, int(argv[2]), 20) + b"last-without-newline")
        os._exit(3)
    elif mode == "quoted":
        write_all(1, b"\n".join(QUOTED) + b"\n")
    elif mode == "control":
        write_all(1, b"\n".join(CONTROL) + b"\n")
    elif mode == "both":
        for i in range(int(argv[2])):
            write_all(1, b"out %d\n" % i)
            write_all(2, b"err %d\n" % i)
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv)
