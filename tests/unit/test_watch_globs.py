"""`watch` globs: which paths under an app's cwd restart it, and which editors' and tools' files never do."""

from __future__ import annotations

import pytest

from omnitron.runtime.watch import matches

CWD = "/srv/app"


@pytest.mark.parametrize(("globs", "path", "expected"), [
    (["src/**/*.py"], "/srv/app/src/main.py", True),
    (["src/**/*.py"], "/srv/app/src/pkg/deep/mod.py", True),
    (["src/**/*.py"], "/srv/app/src/main.pyi", False),
    (["src/**/*.py"], "/srv/app/tests/test_main.py", False),
    (["*.py"], "/srv/app/main.py", True),
    (["*.py"], "/srv/app/src/main.py", False),  # `*` stays within one directory
    (["./config/*.toml"], "/srv/app/config/omnitron.toml", True),
    (["templates/**"], "/srv/app/templates/a/b.html", True),
    (["mod?.py"], "/srv/app/mod1.py", True),
    (["*.py"], "/srv/other/main.py", False),  # outside the app's cwd
    (["src/**/*.py", "*.toml"], "/srv/app/pyproject.toml", True),
])
def test_globs_are_relative_to_the_apps_cwd(globs: list[str], path: str, expected: bool) -> None:
    assert matches(globs, CWD, path) is expected


@pytest.mark.parametrize("path", [
    "/srv/app/src/__pycache__/main.py",
    "/srv/app/.git/hooks/pre-commit.py",
    "/srv/app/src/.main.py.swp",
    "/srv/app/src/.main.py.swo",
    "/srv/app/src/4913",
    "/srv/app/src/main.py~",
    "/srv/app/src/.#main.py",
    "/srv/app/src/#main.py#",
    "/srv/app/node_modules/x/index.py",
])
def test_vcs_caches_and_editor_files_are_ignored_even_when_a_glob_names_them(path: str) -> None:
    assert not matches(["**"], CWD, path)
    assert not matches(["**/*.py", "**/*"], CWD, path)
