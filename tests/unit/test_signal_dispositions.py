"""runtime/signals.py: which signals the daemon ignores, and what install() does to a process (run in a child,
since dispositions belong to the whole process)."""

from __future__ import annotations

import signal
import subprocess
import sys

from omnitron.runtime import signals

CONTRACT_IGNORED = {"SIGUSR2", "SIGALRM", "SIGPIPE", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGVTALRM",
                    "SIGPROF", "SIGURG", "SIGIO", "SIGPWR", "SIGXCPU", "SIGXFSZ"}


def test_ignored_holds_the_contracts_list_and_every_real_time_signal() -> None:
    ignored = signals.ignored()
    assert {signal.Signals[name] for name in CONTRACT_IGNORED} <= ignored
    assert set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1)) <= ignored


def test_ignored_leaves_out_the_handled_the_faults_and_the_uncatchable() -> None:
    ignored = signals.ignored()
    assert not ignored & set(signals.RECEIVED)
    assert not ignored & signals.FAULTS
    assert not ignored & {signal.SIGKILL, signal.SIGSTOP}
    # Every standard signal is in exactly one group.
    every = set(range(1, 32))
    assert ignored & every | set(signals.RECEIVED) | signals.FAULTS | {signal.SIGKILL, signal.SIGSTOP} == every


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)


def test_after_install_ignored_signals_do_nothing_and_stop_signals_are_remembered() -> None:
    result = _run(
        "import os, signal\n"
        "from omnitron.runtime import signals\n"
        "signals.install()\n"
        "for sig in sorted(signals.ignored() | {signal.SIGHUP, signal.SIGUSR1}):\n"
        "    os.kill(os.getpid(), sig)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "os.kill(os.getpid(), signal.SIGQUIT)\n"
        "print(signals.take_early_stops(), signals.take_early_stops())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == f"[{int(signal.SIGTERM)}, {int(signal.SIGQUIT)}] []"


def test_after_the_receiver_a_late_signal_is_dropped_not_fatal() -> None:
    result = _run(
        "import os, signal\n"
        "from omnitron.runtime import signals\n"
        "signals.install()\n"
        "signals.ignore_after_receiver()\n"
        "for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):\n"
        "    os.kill(os.getpid(), sig)\n"
        "print('alive', signals.take_early_stops())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alive []"


def test_a_spawned_child_has_default_dispositions_and_an_empty_mask() -> None:
    result = _run(
        "import subprocess\n"
        "from omnitron.runtime import signals\n"
        "signals.install()\n"
        "with signals.children_mask():\n"
        "    out = subprocess.run(['grep', '^Sig', '/proc/self/status'], capture_output=True, text=True).stdout\n"
        "print(out)\n"
        "print('parent', open('/proc/self/status').read().split('SigBlk:')[1].split()[0])\n"
    )
    assert result.returncode == 0, result.stderr
    child = dict(line.split(":\t") for line in result.stdout.splitlines() if line.startswith("Sig"))
    assert int(child["SigIgn"], 16) == 0 and int(child["SigBlk"], 16) == 0, child
    blocked = int(result.stdout.split("parent ")[1], 16)
    assert {n for n in range(1, 65) if blocked >> (n - 1) & 1} == signals.JOB_CONTROL
