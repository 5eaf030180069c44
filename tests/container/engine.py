"""The Docker engine as the container tests see it: is one there, build the image once, run containers by ID.

Every container a test starts is labelled and removed by its ID afterwards; nothing here acts on a container,
volume or image it did not create.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.deploy_files import REPO
from tests.helpers import wait_for

BASE_IMAGE = "python:3.11-slim-bookworm"
RUN_ID = uuid.uuid4().hex[:12]
LABEL = f"omnitron-test={RUN_ID}"
# Set by .ci/run: there an engine that cannot run is a failure, not a skip.
REQUIRE_ENV = "OMNITRON_REQUIRE_DOCKER"
READY_TIMEOUT_S = 60.0


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None) -> str:
    """Run one docker CLI command; its stdout, stripped. A failure says the command and its stderr."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin, env=_docker_env()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def docker_run(*args: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`docker ARGS` without checking: for commands whose exit status is the point of the test."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin, env=_docker_env()
    )


def _docker_env() -> dict[str, str]:
    # The legacy builder builds the Dockerfile as it is; BuildKit would want a frontend image from a registry.
    return {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}


@functools.cache
def engine_unavailable() -> str | None:
    """Why no container engine can run the image here, or None when one can."""
    if shutil.which("docker") is None:
        return "no `docker` command (CI installs and starts one: tests/container/start-engine.sh)"
    info = docker_run("info", "--format", "{{.ServerVersion}}", timeout=20)
    if info.returncode != 0:
        why = info.stderr.strip().splitlines()
        return f"no Docker engine answers ({why[-1] if why else 'no reason given'})"
    if docker_run("image", "inspect", BASE_IMAGE, timeout=20).returncode != 0:
        return f"the base image {BASE_IMAGE} is absent (deploy/standin-base-image.sh makes one without a registry)"
    return None


def build_image() -> str:
    """Build the Dockerfile from the checkout under a tag of this run; returns the tag."""
    tag = f"omnitron-test:{RUN_ID}"
    docker("build", "--network", "host", "--quiet", "--tag", tag, "--label", LABEL, str(REPO), timeout=600)
    return tag


def remove_image(tag: str) -> None:
    # --no-prune keeps the untagged layers below it: the next run's build reuses them as its cache.
    docker("rmi", "--no-prune", tag, check=False)


def http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


@dataclass
class Container:
    """One container this test run started, addressed by its ID."""

    id: str
    image: str
    ports: dict[int, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Container {self.id[:12]} {self.image}>"

    def inspect(self) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(docker("inspect", self.id))
        return data[0]

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect()["State"]
        return state

    @property
    def host_pid(self) -> int:
        """The host PID of the container's PID 1 (0 once it has stopped)."""
        return int(self.state["Pid"])

    def host_port(self, container_port: int) -> int:
        if container_port not in self.ports:
            published = self.inspect()["NetworkSettings"]["Ports"][f"{container_port}/tcp"]
            self.ports[container_port] = int(published[0]["HostPort"])
        return self.ports[container_port]

    def logs(self, tail: int = 40) -> str:
        result = docker_run("logs", "--tail", str(tail), self.id, timeout=30)
        return result.stdout + result.stderr

    def exec(self, *argv: str, user: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        flags = ["-i"] if stdin is not None else []
        if user is not None:
            flags += ["--user", user]
        return docker_run("exec", *flags, self.id, *argv, timeout=60, stdin=stdin)

    def start_again(self) -> None:
        """`docker start` a stopped container: same filesystem and volumes, new processes, new host ports."""
        docker("start", self.id)
        self.ports.clear()

    def is_running(self) -> bool:
        return bool(self.state["Running"])

    def wait_exited(self, timeout: float = 60) -> int:
        """Wait until the container has stopped; its exit code."""
        wait_for(lambda: not self.is_running(), timeout=timeout, describe=lambda: f"{self} still runs:\n{self.logs()}")
        return int(self.state["ExitCode"])

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """/readyz answers 200 on the published health port (the container must publish 9800)."""
        port = self.host_port(9800)

        def ready() -> bool:
            assert self.is_running(), f"{self} exited with {self.state['ExitCode']}:\n{self.logs()}"
            return http_status(port, "/readyz") == 200

        wait_for(
            ready,
            timeout=timeout,
            interval=0.25,
            describe=lambda: f"/readyz answered {http_status(port, '/readyz')}; output:\n{self.logs()}",
        )

    def health(self) -> str:
        return str(self.state.get("Health", {}).get("Status", "none"))

    def wait_health(self, status: str, timeout: float = 60) -> None:
        wait_for(
            lambda: self.health() == status,
            timeout=timeout,
            interval=0.5,
            describe=lambda: f"want health {status}, got {self.health()}: {self.state.get('Health')}",
        )


Runner = Callable[..., Container]


def start_container(image: str, *args: str, command: list[str] | None = None) -> Container:
    """`docker run -d` with this run's label; ARGS are docker run options."""
    cid = docker("run", "-d", "--label", LABEL, *args, image, *(command or []))
    return Container(cid, image)


def remove_container(container: Container) -> None:
    docker("rm", "-f", "-v", container.id, check=False, timeout=60)
