"""The image in a real engine: PID 1, readiness from the host, HEALTHCHECK, `docker stop`, signals, reaping.

Each test starts the image as built from this checkout (tests/container/conftest.py) and talks to it the way a
platform does: published ports on 127.0.0.1, `docker stop`, `docker kill -s`, the engine's health status.
"""

from __future__ import annotations

import json
from typing import Any

import psutil
import pytest

from tests.container.engine import LABEL, Container, Runner, docker, docker_run, http_status
from tests.deploy_files import DEMO_CONFIG, demo_web_app, read_dockerfile
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(300)

IMAGE_UID = 10001
PUBLISH = ["-p", "127.0.0.1::9800", "-p", "127.0.0.1::3001"]  # the health port and the demo API's shared port
# HEALTHCHECK's own command and timeout, polled every second instead of every 10 s so a test sees it change.
FAST_HEALTH = ["--health-interval", "1s", "--health-retries", "2"]


def demo_api_ports() -> list[int]:
    """The container ports the demo API serves: its one shared `listen` port (PUBLISH publishes it)."""
    from omnitron.config.load import load_config

    app = load_config(DEMO_CONFIG, environ={}).ecosystem.app(demo_web_app().name)
    assert app is not None and app.listen, "the demo API has no `listen`: publish its per-instance ports here"
    return sorted({int(address.rsplit(":", 1)[1]) for address in app.listen})


def status_json(container: Container) -> dict[str, Any]:
    result = container.exec("omnitron", "status", "--json")
    assert result.returncode == 0, f"status in the container: {result.stdout}{result.stderr}"
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def app_pids(container: Container) -> dict[str, int]:
    return {f"{a['name']}:{a['instance']}": a["pid"] for a in status_json(container)["apps"]}


def log_events(container: Container) -> list[str]:
    """The `event` of every JSON line the daemon wrote to the container's stdout."""
    events = []
    for line in docker_run("logs", container.id, timeout=30).stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(str(entry["event"]))
    return events


def daemon_process(container: Container, *, init: bool = False) -> psutil.Process:
    """The omnitron daemon seen from the host: PID 1 itself, or PID 1's one child under `docker run --init`."""
    pid1 = psutil.Process(container.host_pid)
    if not init:
        return pid1
    children = wait_for(pid1.children, timeout=10, describe="docker-init started no child")
    return children[0]


def container_tree(container: Container) -> list[psutil.Process]:
    pid1 = psutil.Process(container.host_pid)
    return [pid1, *pid1.children(recursive=True)]


def test_pid_1_is_the_daemon_as_the_image_user_and_ready_from_the_host(run_container: Runner) -> None:
    container = run_container(*PUBLISH)
    container.wait_ready()
    assert http_status(container.host_port(9800), "/healthz") == 200

    init = container.exec("cat", "/proc/1/cmdline")
    assert init.stdout.split("\0")[1:4] == ["/opt/omnitron/bin/omnitron", "up", "--foreground"], init.stdout
    uids = {p.uids().real for p in container_tree(container)}
    assert uids == {IMAGE_UID}, f"processes of the container run as {uids}, want only {IMAGE_UID}"

    web = demo_web_app()
    for port in demo_api_ports():
        status = http_status(container.host_port(port), web.health_path)
        assert status == 200, f"{web.name} on port {port} gave {status} from the host"


def test_healthcheck_turns_healthy(run_container: Runner) -> None:
    container = run_container(*FAST_HEALTH)
    configured = container.inspect()["Config"]["Healthcheck"]["Test"]
    assert configured == ["CMD", *read_dockerfile().last("HEALTHCHECK").exec_form()]  # type: ignore[union-attr]
    container.wait_health("healthy")


def test_healthcheck_turns_unhealthy_when_the_daemon_is_wedged(run_container: Runner) -> None:
    container = run_container(*FAST_HEALTH)
    container.wait_health("healthy")
    docker("kill", "--signal", "STOP", container.id)
    try:
        container.wait_health("unhealthy", timeout=90)
    finally:
        docker("kill", "--signal", "CONT", container.id, check=False)


def test_docker_stop_exits_0_before_the_grace_period_and_leaves_nothing(run_container: Runner) -> None:
    container = run_container(*PUBLISH)
    container.wait_ready()
    tree = container_tree(container)
    assert len(tree) > 3, f"the demo's apps are not under PID 1: {tree}"

    # Docker's own grace period (10 s, no --time), the one most platforms' stops resemble.
    stop = docker_run("stop", container.id, timeout=60)
    assert stop.returncode == 0, stop.stderr
    # 137 would mean the engine ran out of patience and sent SIGKILL: exit 0 is a graceful stop inside the grace.
    assert container.state["ExitCode"] == 0, container.logs()
    assert "daemon_stopped" in log_events(container)
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after docker stop: {left}"


def test_orphans_reparented_to_pid_1_are_reaped(run_container: Runner) -> None:
    container = run_container(*PUBLISH)
    container.wait_ready()
    # The outer `sh` exits at once (the orphans hold none of exec's pipes); each inner `sh` is orphaned into
    # the container's PID 1 and waits for /tmp/go, so the test sees them all adopted before they exit.
    orphans = 5
    detached = "sh -c 'until [ -e /tmp/go ]; do sleep 0.1; done' </dev/null >/dev/null 2>&1 &"
    spawn = container.exec("sh", "-c", f"for i in $(seq {orphans}); do {detached} done; exit 0")
    assert spawn.returncode == 0, spawn.stderr
    daemon = daemon_process(container)

    def waiting() -> list[psutil.Process]:
        found = []
        for child in daemon.children():
            try:
                if "/tmp/go" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    adopted = wait_for(lambda: len(waiting()) == orphans and waiting(), timeout=20, describe=lambda: f"{waiting()}")
    assert container.exec("touch", "/tmp/go").returncode == 0
    wait_for(
        lambda: not any(p.is_running() for p in adopted),
        timeout=20,
        describe=lambda: f"orphans left: {[(p.pid, p.status()) for p in adopted if p.is_running()]}",
    )
    zombies = [c for c in daemon.children() if c.status() == psutil.STATUS_ZOMBIE]
    assert not zombies, f"zombies under PID 1: {zombies}"
    assert container.is_running()


@pytest.mark.parametrize("init", [False, True], ids=["pid1", "docker-init"])
@pytest.mark.parametrize(
    ("sig", "event"), [("USR1", "log_files_reopened"), ("HUP", "reload_finished")], ids=["USR1", "HUP"]
)
def test_usr1_and_hup_keep_every_app_running(run_container: Runner, init: bool, sig: str, event: str) -> None:
    container = run_container(*PUBLISH, *(["--init"] if init else []))
    container.wait_ready()
    before = app_pids(container)
    docker("kill", "--signal", sig, container.id)
    wait_for(lambda: event in log_events(container), timeout=20, describe=lambda: container.logs())
    assert container.is_running(), container.logs()
    assert app_pids(container) == before, f"docker kill -s {sig} replaced or lost an app"
    container.wait_ready()


@pytest.mark.parametrize("init", [False, True], ids=["pid1", "docker-init"])
def test_quit_is_a_graceful_stop_with_exit_0(run_container: Runner, init: bool) -> None:
    container = run_container(*PUBLISH, *(["--init"] if init else []))
    container.wait_ready()
    daemon = daemon_process(container, init=init)
    assert daemon.cmdline()[-3:] == ["/opt/omnitron/bin/omnitron", "up", "--foreground"], daemon.cmdline()
    tree = [daemon, *daemon.children(recursive=True)]
    docker("kill", "--signal", "QUIT", container.id)
    assert container.wait_exited() == 0, container.logs()
    events = log_events(container)
    assert "shutdown_started" in events and "daemon_stopped" in events, events
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after SIGQUIT: {left}"


def test_an_ignored_signal_forwarded_by_docker_init_changes_nothing(run_container: Runner) -> None:
    """docker-init passes USR2 on to omnitron (as PID 1 the kernel would drop an unhandled one anyway)."""
    container = run_container(*PUBLISH, "--init")
    container.wait_ready()
    before = app_pids(container)
    docker("kill", "--signal", "USR2", container.id)
    # USR1 after USR2: once its reopen is logged, the USR2 before it has been handled (or ignored) too.
    docker("kill", "--signal", "USR1", container.id)
    wait_for(lambda: "log_files_reopened" in log_events(container), timeout=20, describe=lambda: container.logs())
    assert container.is_running() and app_pids(container) == before, container.logs()


def test_the_image_has_oci_labels_and_no_pip_or_setuptools(image: str) -> None:
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image))
    for key in ("title", "description", "version", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"no org.opencontainers.image.{key} label: {labels}"
    listing = docker_run(
        "run", "--rm", "--label", LABEL, "--network", "none", image, "ls", "/opt/omnitron/lib/python3.11/site-packages"
    )
    assert listing.returncode == 0, listing.stderr
    installed = {name.split("-")[0].lower() for name in listing.stdout.split()}
    assert "omnitron" in installed and not installed & {"pip", "setuptools"}, sorted(installed)
