"""The image, built once per test run from the checkout, and containers that are removed after each test.

Where no engine can run (a laptop without Docker) every test here is skipped with the reason; where
OMNITRON_REQUIRE_DOCKER=1 (.ci/run sets it) the same condition fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.container.engine import (
    REQUIRE_ENV,
    Container,
    Runner,
    build_image,
    docker,
    engine_unavailable,
    remove_container,
    remove_image,
    start_container,
)


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    reason = engine_unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but the container tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    tag = build_image()
    yield tag
    remove_image(tag)


@pytest.fixture
def run_container(image: str) -> Iterator[Runner]:
    """Start containers of the image (`docker run -d OPTIONS image [COMMAND]`); each is removed after the test."""
    started: list[Container] = []

    def run(*options: str, command: list[str] | None = None, of: str | None = None) -> Container:
        container = start_container(of or image, *options, command=command)
        started.append(container)
        return container

    yield run
    for container in started:
        remove_container(container)


@pytest.fixture
def volume(image: str) -> Iterator[str]:
    """A named volume for OMNITRON_HOME, removed after the test."""
    from tests.container.engine import LABEL

    name = docker("volume", "create", "--label", LABEL)
    yield name
    # This fixture may be torn down before run_container's: remove this run's containers on the volume first.
    users = docker("ps", "-aq", "--filter", f"label={LABEL}", "--filter", f"volume={name}", check=False).split()
    if users:
        docker("rm", "-f", *users, check=False, timeout=60)
    docker("volume", "rm", name)
