"""The image's start command as PID 1 of a fresh PID namespace: the closest this machine gets to `docker run`.

The command, working directory and environment are read from the Dockerfile, so this test runs what the image
runs: its CMD from its WORKDIR (the repository root holds the same config/ and demo/ the image copies to /app),
with its ENV, OMNITRON_HOME moved to a private directory and the health port moved to a free one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from omnitron.config.model import DaemonConfig
from tests.deploy_files import DEMO_CONFIG, REPO, demo_web_app, read_dockerfile
from tests.external.support import UNSHARE, pid_namespace_unavailable
from tests.helpers import wait_for

VENV_BIN = Path(sys.executable).parent
IMAGE_VENV_BIN = "/opt/omnitron/bin"
# Docker's default PATH for a container, which the image's `ENV PATH=...:${PATH}` extends.
DOCKER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT_S = 30.0


pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(bool(pid_namespace_unavailable()), reason=str(pid_namespace_unavailable())),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def image_env(home: Path, health_port: int) -> dict[str, str]:
    """The Dockerfile's ENV on Docker's base environment, with this venv in place of the image's."""
    declared = read_dockerfile().env()
    assert declared["PATH"] == f"{IMAGE_VENV_BIN}:${{PATH}}", "the test maps only this PATH layout"
    env = {"PATH": f"{VENV_BIN}:{DOCKER_PATH}", "HOME": str(home), "HOSTNAME": "omnitron-test"}
    env.update({k: v for k, v in declared.items() if k != "PATH"})
    env["OMNITRON_HOME"] = str(home)
    env["OMNITRON_HEALTH_PORT"] = str(health_port)
    return env


def image_command() -> tuple[list[str], Path, list[str]]:
    """(CMD, the host directory standing in for WORKDIR, the HEALTHCHECK command)."""
    dockerfile = read_dockerfile()
    cmd, workdir, healthcheck = dockerfile.last("CMD"), dockerfile.last("WORKDIR"), dockerfile.last("HEALTHCHECK")
    assert cmd is not None and workdir is not None and healthcheck is not None
    assert dockerfile.last("ENTRYPOINT") is None
    assert workdir.args == "/app", "the repository root stands in for /app; update this mapping"
    return cmd.exec_form(), REPO, healthcheck.exec_form()


def http_status(port: int, path: str) -> int | None:
    return http_status_at("127.0.0.1", port, path)


def http_status_at(host: str, port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def demo_instances() -> int:
    from omnitron.config.load import load_config

    ecosystem = load_config(DEMO_CONFIG, environ={}).ecosystem
    return sum(app.instances for app in ecosystem.apps if app.autostart)


@pytest.fixture
def container(home: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str], Path]]:
    """`unshare ... CMD` started with the image's env; yields (unshare process, env, output file)."""
    for port in (3001,):
        with socket.socket() as sock:
            in_use = sock.connect_ex(("127.0.0.1", port)) == 0
        assert not in_use, f"port {port} is in use; the demo API binds it"
    cmd, workdir, _ = image_command()
    env = image_env(home, free_port())
    output = tmp_path / "container.log"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [*UNSHARE, *cmd], cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield proc, env, output
    finally:
        if proc.poll() is None:
            # --kill-child: SIGKILL to unshare takes PID 1, and with it the whole namespace, down too.
            proc.kill()
            proc.wait(timeout=10)


def pid_one(unshare: subprocess.Popen[bytes]) -> psutil.Process:
    """The forked child of unshare, which is PID 1 inside the new namespace."""
    children = wait_for(lambda: psutil.Process(unshare.pid).children(), timeout=10, describe="unshare forked no child")
    child = children[0]
    ns_pids = next(
        line for line in Path(f"/proc/{child.pid}/status").read_text().splitlines() if line.startswith("NSpid:")
    )
    assert ns_pids.split()[-1] == "1", f"the daemon is not PID 1 in its namespace ({ns_pids})"
    return child


def wait_ready(unshare: subprocess.Popen[bytes], port: int, output: Path) -> None:
    def ready() -> bool:
        assert unshare.poll() is None, f"the container exited with {unshare.returncode}:\n{tail(output)}"
        return http_status(port, "/readyz") == 200

    wait_for(
        ready,
        timeout=READY_TIMEOUT_S,
        interval=0.2,
        describe=lambda: f"/readyz answered {http_status(port, '/readyz')}; output:\n{tail(output)}",
    )


def demo_liveness_path() -> str:
    """The path of the demo web app's liveness probe, which must answer or the app would restart in a loop."""
    from urllib.parse import urlsplit

    from omnitron.config.load import load_config

    app = load_config(DEMO_CONFIG, environ={}).ecosystem.app(demo_web_app().name)
    assert app is not None and app.liveness is not None and app.liveness.http, "the demo API has no http liveness"
    return urlsplit(app.liveness.http).path


def outside_address() -> str | None:
    """A non-loopback IPv4 address of this host: where `docker run -p` or a platform's router connects."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


def test_image_cmd_as_pid_1_gets_ready_and_exits_0_on_sigterm(
    container: tuple[subprocess.Popen[bytes], dict[str, str], Path],
) -> None:
    unshare, env, output = container
    port = int(env["OMNITRON_HEALTH_PORT"])
    daemon = pid_one(unshare)
    wait_ready(unshare, port, output)
    assert http_status(port, "/healthz") == 200
    web, liveness = demo_web_app(), demo_liveness_path()
    for app_port in sorted(web.ports):
        assert http_status(app_port, liveness) == 200, f"{web.name} on {app_port}: its liveness probe fails"
    if web.is_shared:  # every instance answers on the one port
        answered: set[str] = set()

        def every_instance_answers() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/", timeout=5) as response:
                answered.add(str(json.loads(response.read())["instance"]))
            return answered == {str(i) for i in range(web.instances)}

        wait_for(every_instance_answers, timeout=20, describe=lambda: f"instances answering: {answered}")

    _, workdir, healthcheck = image_command()
    probe = subprocess.run(healthcheck, cwd=workdir, env=env, capture_output=True, text=True, timeout=15)
    assert probe.returncode == 0, f"HEALTHCHECK {healthcheck} failed: {probe.stdout}{probe.stderr}"

    apps = daemon.children(recursive=True)
    assert len(daemon.children()) >= demo_instances(), f"expected the demo's instances under PID 1, saw {apps}"

    os.kill(daemon.pid, signal.SIGTERM)
    grace = DaemonConfig().shutdown_timeout + 15
    code = unshare.wait(timeout=grace)
    assert code == 0, f"SIGTERM to PID 1 gave exit {code}; output:\n{tail(output)}"
    survivors = [p for p in [daemon, *apps] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"still running after the container exited: {survivors}"


def test_demo_api_answers_outside_the_container(
    container: tuple[subprocess.Popen[bytes], dict[str, str], Path],
) -> None:
    """Regression guard: an app bound to 127.0.0.1 is ready inside the container and unreachable from outside."""
    address = outside_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address to connect from")
    unshare, env, output = container
    wait_ready(unshare, int(env["OMNITRON_HEALTH_PORT"]), output)
    web = demo_web_app()
    for app_port in sorted(web.ports):
        status = http_status_at(address, app_port, web.health_path)
        assert status == 200, (
            f"{web.name} is ready but http://{address}:{app_port}{web.health_path} gave "
            f"{status}: bind 0.0.0.0, not 127.0.0.1, or no platform can route to it"
        )
