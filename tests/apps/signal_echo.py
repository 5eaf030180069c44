"""Prints READY, then `GOT <SIGNAME>` for each USR1, USR2, HUP, WINCH or ALRM it receives; SIGTERM ends it."""
import signal
import sys

CAUGHT = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGWINCH, signal.SIGALRM)


def echo(signum: int, frame: object) -> None:
    print(f"GOT {signal.Signals(signum).name}", flush=True)


for sig in CAUGHT:
    signal.signal(sig, echo)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("READY", flush=True)
while True:
    signal.pause()
