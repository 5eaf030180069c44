"""`up --watch`: a change to a watched file restarts the app (rolling); ignored files and no `--watch` do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.daemon_harness import Daemon, app_argv
from tests.helpers import wait_for


def _config(src: Path, instances: int = 1) -> str:
    return f"""
[[apps]]
name = "web"
command = {app_argv("ready.py")}
cwd = "{src.parent}"
instances = {instances}
min_uptime = "0s"
watch = ["src/**/*.py"]
"""


def _project(tmp_path: Path) -> Path:
    src = tmp_path / "project" / "src"
    (src / "pkg" / "__pycache__").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "project" / ".git").mkdir()
    return src


def test_a_watched_file_change_restarts_the_app_and_ignored_files_do_not(
    run_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    src = _project(tmp_path)
    daemon = run_daemon(_config(src), args=["--watch"])
    daemon.wait_states("web", "running")
    wait_for(lambda: daemon.events("watch_started"), timeout=10, describe=daemon.describe)
    before = daemon.pids("web")[0]
    # Matched by the glob but ignored (a cache, a vim swap file, a git object), or not matched at all.
    (src / "pkg" / "__pycache__" / "mod.py").write_text("cached\n")
    (src / "pkg" / ".mod.py.swp").write_text("swap\n")
    (src / "pkg" / "4913").write_text("")
    (tmp_path / "project" / ".git" / "index.py").write_text("")
    (tmp_path / "project" / "notes.txt").write_text("not python\n")
    (src / "pkg" / "mod.py").write_text("x = 2\n")

    pid = wait_for(lambda: (p := daemon.pids("web")[0]) not in (None, before) and p, timeout=20,
                   describe=daemon.describe)
    assert daemon.status("web")["apps"][0]["restarts"] == 1
    changed = daemon.events("watch_changed")
    assert [e["files"] for e in changed] == [[str(src / "pkg" / "mod.py")]], changed
    restarts = [e for e in daemon.events("instance_restarting") if e.get("app") == "web"]
    assert [e.get("reason") for e in restarts] == ["watch"], restarts
    assert pid != before


def test_watch_rolls_one_instance_at_a_time(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    src = _project(tmp_path)
    daemon = run_daemon(_config(src, instances=2), args=["--watch"])
    daemon.wait_states("web", "running", count=2)
    wait_for(lambda: daemon.events("watch_started"), timeout=10, describe=daemon.describe)
    before = daemon.pids("web")
    (src / "pkg" / "mod.py").write_text("x = 3\n")

    wait_for(lambda: all(daemon.pids("web")[i] not in (None, before[i]) for i in (0, 1))
             and all(a["state"] == "running" for a in daemon.status("web")["apps"]), timeout=20,
             describe=daemon.describe)
    lines = [(e["event"], e.get("instance"), e.get("pid")) for e in daemon.events()
             if e.get("app") == "web" and e.get("event") in ("instance_exited", "instance_started")]
    lines = lines[lines.index(("instance_exited", 0, before[0])):]
    # instance 0 is back before instance 1 is stopped
    assert lines.index(("instance_started", 0, daemon.pids("web")[0])) < lines.index(("instance_exited", 1, before[1]))


def test_without_watch_nothing_watches(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    src = _project(tmp_path)
    daemon = run_daemon(_config(src))
    daemon.wait_states("web", "running")
    before = daemon.pids("web")[0]
    (src / "pkg" / "mod.py").write_text("x = 2\n")
    # A daemon that watches logs watch_started before it could act on a change; this one never does, and a
    # restart from the operator is the only one it makes.
    daemon.ok("restart", "web")
    assert daemon.events("watch_started") == [] and daemon.events("watch_changed") == []
    restarts = [e.get("reason") for e in daemon.events("instance_restarting") if e.get("app") == "web"]
    assert restarts == ["operator"]
    assert daemon.pids("web")[0] != before


def test_watch_on_an_app_with_listen_replaces_each_instance_first_and_refuses_no_connection(
    run_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    from tests.e2e.test_listen_e2e import free_port, listen_app, serving_instances
    from tests.e2e.test_surge_e2e import Hammer

    src = _project(tmp_path)
    port = free_port()
    body = listen_app(port, app_argv("listen_server.py", "0.005"), instances=2,
                      extra=f'cwd = "{src.parent}"\nwatch = ["src/**/*.py"]')
    daemon = run_daemon(body, args=["--watch"])
    daemon.wait_states("web", "running", count=2)
    wait_for(lambda: daemon.events("watch_started"), timeout=10, describe=daemon.describe)
    serving_instances(port, {"0", "1"})
    before = set(daemon.pids("web").values())
    with Hammer(port) as hammer:
        hammer.wait_requests(20)
        (src / "pkg" / "mod.py").write_text("x = 4\n")
        wait_for(lambda: not before & set(daemon.pids("web").values())
                 and all(a["state"] == "running" for a in daemon.status("web")["apps"]), timeout=30,
                 describe=daemon.describe)
        hammer.wait_requests(20)
    assert not hammer.failures, f"{hammer.ok} ok, failed: {dict(hammer.failures)}"
    finished = daemon.events("surge_finished")  # each replacement was ready before its old process stopped
    assert {e["pid"] for e in finished} == before, finished
    assert [e.get("reason") for e in daemon.events("instance_restarting") if e.get("app") == "web"] == ["watch"] * 2


def test_up_watch_reaches_a_detached_daemon(home: Path, tmp_path: Path) -> None:
    import os
    import signal

    from tests.daemon_harness import cli, cli_ok, cli_status, write_config

    src = _project(tmp_path)
    config = write_config(tmp_path, _config(src))
    cli_ok("up", "--watch", "-c", str(config), home=home)
    try:
        def pid() -> int | None:
            apps = cli_status(home)["apps"]
            return apps[0]["pid"] if apps and apps[0]["state"] == "running" else None

        before = wait_for(pid, timeout=15)
        log = home / "logs" / "omnitron.log"
        wait_for(lambda: "watch_started" in log.read_text(errors="replace"), timeout=15)
        (src / "pkg" / "mod.py").write_text("x = 5\n")
        wait_for(lambda: (p := pid()) is not None and p != before, timeout=20,
                 describe=lambda: log.read_text(errors="replace")[-2000:])
    finally:
        daemon_pid = (home / "omnitron.pid").read_text().strip()
        if cli("down", home=home).returncode != 0 and daemon_pid.isdigit():
            os.kill(int(daemon_pid), signal.SIGKILL)


def test_watch_follows_a_reload_that_changes_the_globs(run_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    from tests.daemon_harness import write_config

    src = _project(tmp_path)
    conf = src.parent / "conf"
    conf.mkdir()
    config = write_config(tmp_path, _config(src))
    daemon = run_daemon(config, args=["--watch"])
    daemon.wait_states("web", "running")
    config.write_text(config.read_text().replace('watch = ["src/**/*.py"]', 'watch = ["conf/*.toml"]'))
    daemon.ok("reload")  # a changed app: rolled, and watched by its new globs from now on
    wait_for(lambda: len(daemon.events("watch_started")) >= 2, timeout=15, describe=daemon.describe)
    before = daemon.pids("web")[0]
    (src / "pkg" / "mod.py").write_text("x = 9\n")  # the old glob's file: no longer a reason
    (conf / "app.toml").write_text("x = 1\n")
    wait_for(lambda: daemon.pids("web")[0] not in (None, before), timeout=20, describe=daemon.describe)
    assert [e["files"] for e in daemon.events("watch_changed")] == [[str(conf / "app.toml")]]
