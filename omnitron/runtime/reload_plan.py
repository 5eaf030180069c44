"""What a reload changes, decided from the old and new app configs alone: added, removed, changed (their
instances are replaced, one at a time), scaled (only the count moved), unchanged. The Supervisor applies it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omnitron.config.model import AppConfig


@dataclass(frozen=True)
class ReloadPlan:
    fresh: dict[str, AppConfig]  # the new config of every app that stays or comes, by name, in the new order
    added: list[str]
    removed: list[str]
    changed: list[str]
    scaled: dict[str, list[int]]  # name -> [instances now, instances after]
    unchanged: list[str]


def plan_reload(old_apps: Sequence[AppConfig], new_apps: Sequence[AppConfig],
                counts: Mapping[str, int]) -> ReloadPlan:
    """`counts` are the instances each app has now (the autoscaler or `scale` may have moved them)."""
    old = {a.name: a for a in old_apps}
    fresh = {a.name: _keep_autoscaled_count(a, counts.get(a.name, 0)) if a.name in old else a for a in new_apps}
    added = [n for n in fresh if n not in old]
    removed = [n for n in old if n not in fresh]
    changed = [n for n in fresh if n in old and _without_count(fresh[n]) != _without_count(old[n])]
    scaled = {n: [counts.get(n, 0), fresh[n].instances] for n in fresh
              if n in old and counts.get(n, 0) != fresh[n].instances}
    unchanged = [n for n in fresh if n in old and n not in changed and n not in scaled]
    return ReloadPlan(fresh, added, removed, changed, scaled, unchanged)


def _without_count(app: AppConfig) -> AppConfig:
    """What a reload compares: neither the count nor the autoscaling block needs the instances replaced."""
    return app.model_copy(update={"instances": 0, "scaling": None})


def _keep_autoscaled_count(app: AppConfig, current: int) -> AppConfig:
    """An autoscaled app keeps the count it has across a reload (within its new min..max), not its start count."""
    if app.scaling is None:
        return app
    return app.model_copy(update={"instances": min(max(current, app.scaling.min), app.scaling.max)})
