"""Reading the queue-depth signal of `[apps.scaling]`: an exec command's stdout or an HTTP URL's body.

Either must produce one number (an integer or a decimal, surrounding whitespace allowed). A reading that
fails says why in one line, which the autoscaler shows as the app's scaling reason while it keeps the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import anyio
from anyio.abc import ByteReceiveStream

from omnitron.runtime import process
from omnitron.runtime.identity import Identity

MAX_ANSWER_BYTES: Final = 4096  # a depth is a short number; more than this is not one


class SignalError(Exception):
    """A queue reading that failed; str() is the one-line reason."""


def parse_depth(raw: bytes, source: str) -> float:
    text = raw.decode("utf-8", "replace").strip()
    try:
        depth = float(text)
    except ValueError:
        shown = text[:40] + ("…" if len(text) > 40 else "")
        raise SignalError(f"{source} answered {shown!r}, not a number") from None
    if depth != depth or depth < 0 or depth == float("inf"):
        raise SignalError(f"{source} answered {text!r}, not a depth (a number of 0 or more)")
    return depth


async def read_exec(argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout_s: float,
                    identity: Identity | None = None) -> float:
    """Run argv with the app's env, cwd and user; its stdout is the depth. The whole group is killed at the
    timeout."""
    source = f"queue command {argv[0]!r}"
    try:
        child = process.spawn(process.LaunchSpec(argv=tuple(argv), env=dict(env), cwd=cwd, identity=identity))
    except FileNotFoundError:
        raise SignalError(f"{source} not found (check `queue.exec`)") from None
    except (OSError, ValueError) as exc:
        raise SignalError(f"{source} could not start: {getattr(exc, 'strerror', None) or exc}") from None
    out = bytearray()
    try:
        with anyio.move_on_after(timeout_s) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_collect, child.stdout, out)
                tg.start_soon(_collect, child.stderr, None)
                code = await child.wait_exited()
        if scope.cancelled_caught:
            raise SignalError(f"{source} took longer than its timeout ({timeout_s:g}s)")
    finally:
        await process.kill(child)  # the whole group, so a reading never leaves background processes
        child.close_pipes()
    if code != 0:
        raise SignalError(f"{source} failed: {process.describe_exit(code)}")
    return parse_depth(bytes(out), source)


async def read_http(url: str, *, timeout_s: float) -> float:
    """GET the URL (in a worker thread, bounded by the timeout); a 2xx body is the depth."""
    import urllib.error  # here: urllib.request and http.client cost a daemon without a queue URL ~5 ms at start
    import urllib.request

    source = f"queue URL {url}"

    def get() -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as answer:
                return bytes(answer.read(MAX_ANSWER_BYTES + 1))
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the connection
            raise SignalError(f"{source} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SignalError(f"{source} failed: {reason}") from None

    # urlopen's timeout is per socket operation; this bounds the whole reading.
    with anyio.move_on_after(timeout_s) as scope:
        body = await anyio.to_thread.run_sync(get, abandon_on_cancel=True)
    if scope.cancelled_caught:
        raise SignalError(f"{source} took longer than its timeout ({timeout_s:g}s)")
    if len(body) > MAX_ANSWER_BYTES:
        raise SignalError(f"{source} answered more than {MAX_ANSWER_BYTES} bytes, not a number")
    return parse_depth(body, source)


async def _collect(stream: ByteReceiveStream, into: bytearray | None) -> None:
    try:
        while chunk := await stream.receive():
            if into is not None and len(into) <= MAX_ANSWER_BYTES:
                into.extend(chunk)
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return
