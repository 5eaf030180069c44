"""Regression test for the hardening issue, item 17: a spawn refused for lack of file descriptors said
"spawn failed: Too many open files (check `command`)", blaming the app. It names the limit and its fix now.
A real spawn in a real process whose RLIMIT_NOFILE leaves no room for the child's pipes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, resource
    from omnitron.runtime import process
    from omnitron.runtime.process import LaunchSpec
    spec = LaunchSpec(argv=("true",), env={"PATH": "/usr/bin:/bin"}, cwd="/")
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    try:
        process.spawn(spec)
    except OSError as error:
        print(process.spawn_failure(error, spec))
    else:
        print("spawned")
""")


def test_running_out_of_file_descriptors_names_the_limit_not_the_command() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("spawn failed: the daemon is out of open files (Too many open files; the daemon's limit "
                           "is "), line
    assert line.endswith("raise the limit (`ulimit -n`, LimitNOFILE=, docker --ulimit nofile=) or run fewer instances")
    assert "check `command`" not in line
