"""What a reload changes, decided from the configs alone (runtime/reload_plan.py)."""

from __future__ import annotations

from omnitron.config.model import AppConfig
from omnitron.runtime.reload_plan import plan_reload


def app(name: str, **fields: object) -> AppConfig:
    return AppConfig.model_validate({"name": name, "command": "sleep 60", **fields})


def test_each_app_lands_in_one_bucket() -> None:
    old = [app("same"), app("edited", env={"V": "1"}), app("gone"), app("counted", instances=2)]
    new = [app("same"), app("edited", env={"V": "2"}), app("counted", instances=3), app("new")]
    plan = plan_reload(old, new, {"same": 1, "edited": 1, "gone": 1, "counted": 2})
    assert (plan.added, plan.removed, plan.changed, plan.unchanged) == (["new"], ["gone"], ["edited"], ["same"])
    assert plan.scaled == {"counted": [2, 3]}
    assert list(plan.fresh) == ["same", "edited", "counted", "new"]


def test_a_count_moved_at_run_time_is_scaled_back_to_the_config() -> None:
    plan = plan_reload([app("api", instances=2)], [app("api", instances=2)], {"api": 4})
    assert (plan.scaled, plan.changed, plan.unchanged) == ({"api": [4, 2]}, [], [])


def test_an_autoscaled_app_keeps_its_count_within_the_new_range_and_a_new_block_is_no_change() -> None:
    old = [app("w", scaling={"min": 1, "max": 8, "target_cpu": 70})]
    new = [app("w", scaling={"min": 1, "max": 3, "target_cpu": 50})]
    plan = plan_reload(old, new, {"w": 5})
    assert plan.changed == [] and plan.scaled == {"w": [5, 3]} and plan.fresh["w"].instances == 3
    kept = plan_reload(old, new, {"w": 2})
    assert kept.scaled == {} and kept.unchanged == ["w"] and kept.fresh["w"].instances == 2
