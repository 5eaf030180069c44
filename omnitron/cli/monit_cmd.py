"""`omnitron monit`: a full-screen live view of every instance, in the CLI process (never in the daemon).

curses (stdlib) draws it. Measured with bench/monit_libs.py on the 2-core CI machine: importing curses
adds ~1 ms to the interpreter's start, rich.live ~45 ms and textual.app ~580 ms; a 20-row frame at 80×24
costs ~0.4 ms in curses against ~18 ms to render a rich Table (and curses sends only what changed, which
matters over `kubectl exec -it`). It needs only a terminfo entry; without TERM (as `kubectl exec` may
leave it) it tries xterm-256color, xterm, vt100.

Live from the control socket: a thread follows GET /v1/events?follow=1 and each event both lands in the
events pane and asks a second thread for a fresh GET /v1/status; between events that thread reads the status
every REFRESH_S for the figures events do not carry (CPU, memory, uptime). The drawing loop never waits on
the socket.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time

from omnitron.errors import ExitCode, OmnitronError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import curses as _curses
    from typing import Any

    from omnitron.cli.client import ControlClient
    from omnitron.cli.monit_view import Model

REFRESH_S = 2.0
OUTPUT_LINES = 50
_TAIL_BYTES = 32 * 1024
_QUIT_KEYS = frozenset({ord("q"), ord("Q"), 27})  # 27: Esc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monit", help="full-screen live view of every instance (q quits)",
        description="Full-screen live view: state, health, CPU, memory, restarts, uptime, events and output. "
        "Keys: up/down (or j/k) select, tab switches events/output, q quits.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from omnitron.cli.client import ControlClient
    from omnitron.home.root import ClientHome

    client = ControlClient(ClientHome())
    first = client.status()  # no daemon: exit 3 here, before the screen is touched
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("omnitron monit needs a terminal",
                         "run it in one (`kubectl exec -it`, `fly ssh console`), or use `omnitron status`")
    import curses
    import locale

    locale.setlocale(locale.LC_ALL, "")
    _ensure_terminfo(curses)
    from omnitron.cli.monit_view import Model

    model = Model(unicode="utf" in (locale.getpreferredencoding(False) or "").lower())
    model.update(first)
    feed: queue.Queue[tuple[str, Any]] = queue.Queue()
    wanted = threading.Event()  # set: read the status now (an event came, a key was pressed)
    threading.Thread(target=_follow_events, args=(client, feed), daemon=True, name="monit-events").start()
    threading.Thread(target=_read_status, args=(client, feed, wanted), daemon=True, name="monit-status").start()
    curses.wrapper(_loop, model, feed, wanted)
    return ExitCode.OK


def _ensure_terminfo(curses: Any) -> None:
    """A TERM curses knows: `kubectl exec -it` and minimal images may pass none, or one without terminfo."""
    for term in (os.environ.get("TERM") or "", "xterm-256color", "xterm", "vt100"):
        if not term or term == "dumb":
            continue
        try:
            curses.setupterm(term, sys.stdout.fileno())
        except curses.error:
            continue
        os.environ["TERM"] = term
        return
    raise OmnitronError("no terminal description found for TERM", "set TERM=xterm, or install ncurses-base")


def _follow_events(client: ControlClient, feed: queue.Queue[tuple[str, Any]]) -> None:
    """The event stream, into `feed`; reconnects (after a pause) when the daemon ends it or goes away."""
    is_first = True
    while True:
        try:
            for event in client.stream(f"/v1/events?n={20 if is_first else 0}&follow=1"):
                feed.put(("event", event))
            feed.put(("problem", "the daemon ended the event stream"))
        except OmnitronError as error:
            feed.put(("problem", error.cause))
        is_first = False
        time.sleep(REFRESH_S)


def _read_status(client: ControlClient, feed: queue.Queue[tuple[str, Any]], wanted: threading.Event) -> None:
    """GET /v1/status when asked, and every REFRESH_S, into `feed`: off the drawing thread, so `q` answers at
    once even while a stopped daemon keeps a read waiting for its timeout."""
    while True:
        wanted.wait(REFRESH_S)
        wanted.clear()
        try:
            feed.put(("status", client.status()))
        except OmnitronError as error:
            feed.put(("problem", error.cause))


def _loop(screen: _curses.window, model: Model, feed: queue.Queue[tuple[str, Any]], wanted: threading.Event) -> None:
    import curses

    from omnitron.cli.monit_view import layout

    styles = _styles(curses)
    try:
        curses.curs_set(0)
    except curses.error:
        pass  # a terminal that cannot hide the cursor
    screen.timeout(200)
    screen.keypad(True)
    while True:
        height, width = screen.getmaxyx()
        _paint(screen, layout(model, height, width), styles, height, width)
        key = screen.getch()
        if key in _QUIT_KEYS:
            return
        is_output_due = _on_key(key, model)
        while True:
            try:
                kind, item = feed.get_nowait()
            except queue.Empty:
                break
            if kind == "event":
                model.add_event(item)
                wanted.set()
            elif kind == "status":
                model.update(item)
                is_output_due = True
            else:
                model.problem = str(item)
        selected = model.selected_key()
        if is_output_due and model.pane == "output" and selected is not None:
            model.output = _tail(*selected)


def _on_key(key: int, model: Model) -> bool:
    """Apply a key; True when the output pane needs reading again (a new selection, the pane switched)."""
    import curses

    if key in (curses.KEY_UP, ord("k")):
        model.move(-1)
    elif key in (curses.KEY_DOWN, ord("j")):
        model.move(1)
    elif key in (ord("\t"), ord("o"), ord("e")):
        model.pane = "output" if model.pane == "events" and key != ord("e") else "events"
    else:
        return False
    return True


def _tail(app: str, instance: int) -> list[tuple[str, str]]:
    """The selected instance's last lines, from its log file in OMNITRON_HOME (the CLI's user owns it)."""
    from omnitron.home.paths import Home, instance_log_name
    from omnitron.output.logfile import parse_line

    path = os.path.join(Home.from_env().logs_dir, instance_log_name(app, instance))
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            lines = f.read().split(b"\n")[1 if size > _TAIL_BYTES else 0:]
    except OSError:
        return []
    parsed = [parse_line(raw) for raw in lines if raw][-OUTPUT_LINES:]
    return [(p.stream, p.line.decode("utf-8", "replace").replace("\t", " ")) for p in parsed]


def _styles(curses: Any) -> dict[str, int]:
    styles = {"header": curses.A_REVERSE, "title": curses.A_BOLD, "selected": curses.A_REVERSE,
              "dim": curses.A_DIM, "row": curses.A_NORMAL}
    if not curses.has_colors():
        return styles
    curses.start_color()
    try:
        curses.use_default_colors()
        background = -1
    except curses.error:
        background = curses.COLOR_BLACK
    colours = {"green": curses.COLOR_GREEN, "yellow": curses.COLOR_YELLOW, "red": curses.COLOR_RED,
               "cyan": curses.COLOR_CYAN}
    pairs = {}
    for number, (name, colour) in enumerate(colours.items(), start=1):
        curses.init_pair(number, colour, background)
        pairs[name] = curses.color_pair(number)
    by_state = {"running": "green", "completed": "cyan", "starting": "yellow", "stopping": "yellow",
                "backoff": "yellow", "fatal": "red"}
    for state, colour in by_state.items():
        styles[f"state:{state}"] = pairs[colour] | (curses.A_BOLD if state == "fatal" else 0)
    styles["state:stopped"] = curses.A_DIM
    for kind in ("exit", "fatal", "unhealthy"):
        styles[f"event:{kind}"] = pairs["red"]
    for kind in ("restart", "stop", "scale", "reload"):
        styles[f"event:{kind}"] = pairs["yellow"]
    for kind in ("start", "healthy", "completed"):
        styles[f"event:{kind}"] = pairs["green"]
    styles["stderr"] = pairs["red"]
    return styles


def _paint(screen: _curses.window, lines: list[Any], styles: dict[str, int], height: int, width: int) -> None:
    import curses

    screen.erase()
    for line in lines:
        _put(screen, line.y, 0, line.text, styles.get(line.style, 0), height, width, curses)
        for x, length, style in line.spans:
            if style in styles:
                _put(screen, line.y, x, line.text[x:x + length], styles[style], height, width, curses)
    screen.refresh()


def _put(screen: _curses.window, y: int, x: int, text: str, attr: int, height: int, width: int, curses: Any) -> None:
    text = text[: max(0, width - x - (1 if y == height - 1 else 0))]  # the last cell scrolls the screen
    if not text:
        return
    try:
        screen.addstr(y, x, text, attr)
    except curses.error:
        pass  # a terminal resized between layout and paint: the next frame fits
