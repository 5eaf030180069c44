"""ResourceSampler on real process trees: descendants' memory and CPU count toward their root."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from omnitron.health.resources import ResourceSampler, TreeUsage
from tests.helpers import python, wait_for

MIB = 1024 * 1024
HOG_MIB = 64


@pytest.fixture
def sampler() -> ResourceSampler:
    return ResourceSampler(scan_max_age_s=0.0)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        # the whole tree, by PID: a grandchild outlives a killed parent (it is reparented, out of our sight)
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        proc.kill()
        proc.wait(timeout=10)
        for child in tree:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=10)


def start(procs: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(python(code), stdout=subprocess.DEVNULL)
    procs.append(proc)
    return proc


def tree_parent_code(child_code: str) -> str:
    """A parent that starts `child_code` as its child, then sleeps."""
    return (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}])\n"
        "while True: time.sleep(3600)\n"
    )


def test_a_child_s_memory_counts_toward_its_root(
    sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ready = tmp_path / "hog-ready"
    # bytes multiplication writes every page, so the pages are resident (a calloc'd bytearray might not be)
    hog = f"import time\ndata = b'x' * ({HOG_MIB} * 1024 * 1024)\nopen({str(ready)!r}, 'w').close()\ntime.sleep(3600)"
    parent = start(procs, tree_parent_code(hog))
    wait_for(ready.exists, timeout=20, describe="the memory hog child never allocated")
    own_rss = psutil.Process(parent.pid).memory_info().rss
    assert own_rss < HOG_MIB * MIB, "the parent alone must be smaller than the hog for this test to mean anything"

    usage = sampler.sample(parent.pid)
    assert usage is not None
    assert usage.rss > HOG_MIB * MIB
    assert usage.rss > own_rss


def test_cpu_percent_of_a_busy_child_shows_between_samples(
    sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    ready = tmp_path / "spin-ready"
    spin = f"open({str(ready)!r}, 'w').close()\nwhile True: pass"
    parent = start(procs, tree_parent_code(spin))
    wait_for(ready.exists, timeout=20, describe="the busy child never started")
    first = sampler.sample(parent.pid)
    assert first is not None and first.cpu_percent == 0.0  # no previous sample yet

    seen: list[TreeUsage | None] = []

    def busy() -> bool:
        usage = sampler.sample(parent.pid)
        seen.append(usage)
        return usage is not None and usage.cpu_percent > 0 and usage.cpu_seconds > first.cpu_seconds

    wait_for(busy, timeout=20, interval=0.1, describe=lambda: f"last samples {seen[-3:]}")


def test_cpu_seconds_keep_reaped_children(
    sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    done = tmp_path / "done"
    burn = "import time\nwhile time.process_time() < 0.2: pass"
    code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}], check=True)\n"
        f"open({str(done)!r}, 'w').close()\n"
        "while True: time.sleep(3600)\n"
    )
    parent = start(procs, code)
    wait_for(done.exists, timeout=30, describe="the CPU burning child never finished")
    assert psutil.Process(parent.pid).children() == []
    times = psutil.Process(parent.pid).cpu_times()
    usage = sampler.sample(parent.pid)
    assert usage is not None
    # the child is gone, yet its 0.2 s of CPU still counts on top of the parent's own (0.1 s: tick rounding)
    assert usage.cpu_seconds >= times.user + times.system + 0.1


def test_a_gone_pid_samples_as_none(sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]]) -> None:
    proc = start(procs, "import time\ntime.sleep(3600)")
    assert sampler.sample(proc.pid) is not None
    proc.kill()
    proc.wait(timeout=10)
    assert sampler.sample(proc.pid) is None


def test_a_zombie_root_samples_as_none(sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]]) -> None:
    proc = start(procs, "raise SystemExit(0)")
    wait_for(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, timeout=10, describe="never exited")
    assert sampler.sample(proc.pid) is None


def test_forget_restarts_cpu_percent(sampler: ResourceSampler, procs: list[subprocess.Popen[bytes]]) -> None:
    proc = start(procs, "while True: pass")
    assert sampler.sample(proc.pid) is not None
    sampler.forget(proc.pid)
    usage = sampler.sample(proc.pid)
    assert usage is not None and usage.cpu_percent == 0.0


def test_the_daemon_itself_samples(sampler: ResourceSampler) -> None:
    import os

    usage = sampler.sample(os.getpid())
    assert usage is not None and usage.rss > 0 and usage.cpu_seconds > 0
