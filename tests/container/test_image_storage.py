"""The image's OMNITRON_HOME in a real engine: a volume that outlives containers, a read-only root, a random UID
in group 0, and the release command as a one-off container.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.container.engine import LABEL, Container, Runner, docker, docker_run

pytestmark = pytest.mark.timeout(300)

HOME = "/var/lib/omnitron"
PUBLISH = ["-p", "127.0.0.1::9800"]
NO_DAEMON = 3


def one_off(image: str, *options: str, command: list[str]) -> tuple[int, str]:
    """`docker run --rm OPTIONS image COMMAND` in the foreground: (the container's exit status, its output)."""
    result = docker_run("run", "--rm", "--label", LABEL, *options, image, *command, timeout=120)
    return result.returncode, result.stdout + result.stderr


def daemon_starts(container: Container) -> int:
    result = container.exec("omnitron", "events", "-n", "1000", "--json")
    assert result.returncode == 0, f"omnitron events: {result.stdout}{result.stderr}"
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return sum(1 for event in events if event["kind"] == "daemon_start")


@pytest.fixture
def config_dir() -> Iterator[Path]:
    """A host folder the image's user can read, to bind-mount a config into a container."""
    path = Path(tempfile.mkdtemp(prefix="omnitron-ct-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_history_and_secrets_survive_a_new_container_on_the_same_volume(run_container: Runner, volume: str) -> None:
    value = secrets.token_urlsafe(16)
    first = run_container(*PUBLISH, "-v", f"{volume}:{HOME}")
    first.wait_ready()
    stored = first.exec("omnitron", "secrets", "set", "API_TOKEN", stdin=value)
    assert stored.returncode == 0, stored.stderr
    assert daemon_starts(first) == 1
    docker("stop", first.id)
    docker("rm", first.id)

    second = run_container(*PUBLISH, "-v", f"{volume}:{HOME}")
    second.wait_ready()
    assert daemon_starts(second) == 2, "history.db did not carry the first container's events over"
    got = second.exec("omnitron", "secrets", "get", "API_TOKEN")
    assert (got.returncode, got.stdout.strip()) == (0, value), got.stderr


def test_a_killed_container_starts_again_clean_on_its_home(run_container: Runner, volume: str) -> None:
    container = run_container(*PUBLISH, "-v", f"{volume}:{HOME}")
    container.wait_ready()
    tree = [psutil.Process(container.host_pid), *psutil.Process(container.host_pid).children(recursive=True)]
    docker("kill", "--signal", "KILL", container.id)
    assert container.wait_exited() == 128 + 9
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    # The PID file, socket and state.json of the killed daemon are still on the volume.
    container.start_again()
    container.wait_ready()
    status = container.exec("omnitron", "status")
    assert status.returncode == 0, f"{status.stdout}{status.stderr}"
    assert daemon_starts(container) == 2


def test_a_read_only_root_with_a_tmpfs_and_the_volume_works(run_container: Runner, volume: str) -> None:
    container = run_container(*PUBLISH, "--read-only", "--tmpfs", "/tmp", "-v", f"{volume}:{HOME}")
    container.wait_ready()
    assert container.exec("touch", "/app/x").returncode != 0, "the root file system is writable"
    docker("stop", container.id)
    assert container.state["ExitCode"] == 0, container.logs()


def test_a_random_uid_in_group_0_runs_the_image(run_container: Runner, image: str) -> None:
    """OpenShift's restricted SCC: an arbitrary UID, group 0; the home is group-writable for it."""
    container = run_container(*PUBLISH, "--user", "12345:0")
    container.wait_ready()
    uids = {p.uids().real for p in [psutil.Process(container.host_pid), *psutil.Process(container.host_pid).children()]}
    assert uids == {12345}
    status = container.exec("omnitron", "status")
    assert status.returncode == 0, f"{status.stdout}{status.stderr}"

    code, output = one_off(image, "--user", "12345:0", command=["omnitron", "status"])
    assert code == NO_DAEMON, output


def test_a_uid_outside_group_0_is_told_which_home_it_cannot_use(image: str) -> None:
    code, output = one_off(image, "--user", "12345:12345", command=["omnitron", "up", "--foreground"])
    assert code == 1, output
    error = next(line for line in output.splitlines() if line.startswith("omnitron: "))
    assert f"OMNITRON_HOME {HOME}" in error and "uid 12345" in error, output

    code, output = one_off(image, "--user", "12345:12345", command=["omnitron", "status"])
    assert code == 1, output
    assert f"cannot look into OMNITRON_HOME {HOME}: permission denied (uid 12345, gid 12345)" in output, output


def test_the_release_command_runs_as_a_one_off_container_with_its_exit_status(image: str, config_dir: Path) -> None:
    code, output = one_off(image, command=["omnitron", "infra", "migrate"])
    assert code == 0, f"the demo's release command failed: {output}"

    config = config_dir / "omnitron.toml"
    config.write_text(
        '[[apps]]\nname = "web"\ncommand = "sleep 1000"\n\n'
        "[infra]\nmigrate = [\"python3 -c 'print(123 * 3)'\", \"sh -c 'exit 7'\", \"python3 -c 'print(1)'\"]\n"
    )
    config.chmod(0o644)
    mount = ["-v", f"{config_dir}:/cfg:ro", "-e", "OMNITRON_CONFIG=/cfg/omnitron.toml"]
    code, output = one_off(image, *mount, command=["omnitron", "infra", "migrate"])
    assert code == 7, f"the container's exit status is not the failed release command's: {output}"
    assert "369" in output, f"the first command's output did not stream: {output}"


SHARED_PORT_SERVER = """
import http.server, os, socket

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ['OMNITRON_INSTANCE']} {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("", 0), Hello, bind_and_activate=False)
server.socket = socket.socket(fileno=3)  # the listening socket the daemon passed (LISTEN_FDS=1)
server.serve_forever()
"""


def test_one_shared_port_serves_every_instance_from_the_host(run_container: Runner, config_dir: Path) -> None:
    """`listen`: the daemon binds 0.0.0.0:8000 in the container, both instances accept on it (section 11)."""
    (config_dir / "serve.py").write_text(SHARED_PORT_SERVER)
    (config_dir / "omnitron.toml").write_text(
        '[[apps]]\nname = "web"\nbootstrap = "serve.py"\ninstances = 2\nlisten = "0.0.0.0:8000"\n'
        '[apps.health]\nhttp = "http://127.0.0.1:8000/"\ninterval = "1s"\n'
    )
    for path in config_dir.iterdir():
        path.chmod(0o644)
    mount = ["-v", f"{config_dir}:/cfg:ro", "-e", "OMNITRON_CONFIG=/cfg/omnitron.toml"]
    container = run_container(*PUBLISH, "-p", "127.0.0.1::8000", *mount)
    container.wait_ready()
    port = container.host_port(8000)

    def answers() -> set[str]:
        seen = set()
        for _ in range(10):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                assert response.status == 200
                seen.add(response.read().decode())
        return seen

    first = answers()
    status = json.loads(container.exec("omnitron", "status", "--json").stdout)
    pids = {app["pid"] for app in status["apps"]}
    assert len(pids) == 2 and {int(a.split()[1]) for a in first} <= pids, (first, pids)
    restart = container.exec("omnitron", "restart", "web")
    assert restart.returncode == 0, f"{restart.stdout}{restart.stderr}"
    after = answers()
    assert not {int(a.split()[1]) for a in after} & pids, f"the old instances still answer: {after}"
