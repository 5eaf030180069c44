"""MODE PIDFILE: starts a process that leaves this one's process group, writes its PID to PIDFILE, prints
READY and sleeps. Modes: setsid (a double fork: the escapee's parent exits, it is re-parented), setsid-deaf (the same,
ignoring SIGTERM), setpgid (a
child in a group of its own), clear-env (a child in its own session with an empty environment, so no run
marker; this process stays its parent), clear-env-orphan (clear-env through a double fork: no marker, and
re-parented before anyone looks)."""
import os
import subprocess
import sys
import time

mode, pidfile = sys.argv[1], sys.argv[2]
SLEEP = [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"]
DEAF = [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True: time.sleep(3600)"]


def write(pid: int) -> None:
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(pid))
    os.rename(pidfile + ".tmp", pidfile)


def double_fork(env: dict[str, str] | None, argv: list[str] = SLEEP) -> None:
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            write(os.getpid())
            os.execve(sys.executable, argv, dict(os.environ) if env is None else env)
        os._exit(0)
    os.waitpid(pid, 0)


if mode == "setsid":
    double_fork(None)
elif mode == "setsid-deaf":  # as setsid, and the escapee ignores SIGTERM
    double_fork(None, DEAF)
elif mode == "setpgid":
    write(subprocess.Popen(SLEEP, process_group=0).pid)
elif mode == "clear-env":
    write(subprocess.Popen(SLEEP, start_new_session=True, env={}).pid)
elif mode == "clear-env-orphan":
    double_fork({})
else:
    sys.exit(f"unknown mode {mode}")
print("READY", flush=True)
while True:
    time.sleep(3600)
