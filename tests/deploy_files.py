"""Readers for the Dockerfile, .dockerignore and the demo config, shared by the template and container tests."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY = REPO / "deploy"
DEMO_CONFIG = REPO / "config" / "omnitron.toml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of CMD, ENTRYPOINT, VOLUME or HEALTHCHECK ... CMD; shell form is an error here."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            _, sep, text = text.partition(" CMD ")
            assert sep, f"Dockerfile:{self.line}: HEALTHCHECK has no CMD"
        value = json.loads(text.strip())
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
            f"Dockerfile:{self.line}: {self.keyword} must be in exec form (a JSON array of strings)"
        )
        return value


@dataclass(frozen=True)
class Dockerfile:
    stages: list[list[Instruction]]

    @property
    def final(self) -> list[Instruction]:
        return self.stages[-1]

    def all(self, keyword: str) -> list[Instruction]:
        """Every `keyword` instruction of the final stage, in order."""
        return [i for i in self.final if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        """The one that takes effect (Docker keeps the last CMD, USER, WORKDIR...)."""
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The final stage's ENV, as written (`${PATH}` is left unexpanded)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                key, sep, value = token.partition("=")
                assert sep, f"Dockerfile:{instruction.line}: write ENV as KEY=value, got {token!r}"
                values[key] = value
        return values

    def copy_sources(self) -> list[str]:
        """Sources of every COPY/ADD from the build context (not `--from=` another stage), all stages."""
        sources: list[str] = []
        for stage in self.stages:
            for instruction in stage:
                if instruction.keyword not in ("COPY", "ADD"):
                    continue
                words = shlex.split(instruction.args)
                if any(w.startswith("--from=") for w in words):
                    continue
                paths = [w for w in words if not w.startswith("--")]
                sources.extend(paths[:-1])
        return sources


def read_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    """Instructions grouped by stage, with continuation lines joined and comment lines dropped."""
    stages: list[list[Instruction]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), " ".join(args.split()), start)
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"{path.name}:{start}: {instruction.keyword} before the first FROM"
        stages[-1].append(instruction)
    return Dockerfile(stages)


def dockerignore_excludes(relative: str, patterns: list[str] | None = None) -> bool:
    """Whether `.dockerignore` keeps `relative` out of the build context (the last matching rule wins)."""
    rules = patterns if patterns is not None else _dockerignore_rules()
    parts = Path(relative).parts
    excluded = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.strip("/")
        # A rule matches a path or any of its parent directories; `**/` matches any depth.
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        bare = pattern[3:] if pattern.startswith("**/") else None
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates) or (
            bare is not None and any(fnmatch.fnmatchcase(p, bare) for p in parts)
        ):
            excluded = not negate
    return excluded


def _dockerignore_rules() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@dataclass(frozen=True)
class WebApp:
    """The demo app that serves HTTP: the one templates route traffic to."""

    name: str
    port: int
    instances: int
    health_path: str
    is_shared: bool = False  # `listen`: every instance serves `port`

    @property
    def ports(self) -> set[int]:
        """What the platform may route to: the shared port, or one per instance."""
        return {self.port} if self.is_shared else set(range(self.port, self.port + self.instances))


def demo_web_app() -> WebApp:
    """The first app of the demo config with `listen` (its shared port) or a `port`, its instance count and its
    HTTP probe's path; with `listen`, PORT unset (the template's own PORT is checked against it)."""
    from omnitron.config.addresses import parse_address
    from omnitron.config.load import load_config

    assert DEMO_CONFIG.is_file(), f"the demo config {DEMO_CONFIG} is missing"
    ecosystem = load_config(DEMO_CONFIG, environ={}).ecosystem
    app = next((a for a in ecosystem.apps if a.listen or a.port is not None), None)
    assert app is not None, f"{DEMO_CONFIG}: no app has `listen` or a `port`"
    assert app.health is not None and app.health.http, f"{DEMO_CONFIG}: app {app.name} has no http probe"
    port = parse_address(app.listen[0]).port if app.listen else app.port
    assert port is not None
    return WebApp(app.name, port, app.instances, urlsplit(app.health.http).path or "/", is_shared=bool(app.listen))
