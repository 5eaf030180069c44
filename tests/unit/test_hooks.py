"""`[[hooks]]`: the config's checks, the payload shapes, and a full queue that drops and counts (no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from omnitron.config.hooks import HookConfig
from omnitron.config.load import load_config
from omnitron.runtime.events import Event
from omnitron.runtime.hooks import HookRunner, HookWorker, chat_text, event_env, payload, webhook_body
from tests.unit.test_config_load import problems_of, write

APP = '[[apps]]\nname = "api"\ncommand = "true"\n\n'


def test_a_hook_loads_with_its_defaults_and_the_url_interpolated(tmp_path: Path) -> None:
    path = write(tmp_path, APP + '[[hooks]]\non = ["fatal"]\nwebhook = "${HOOK_URL}"\n\n'
                                 '[[hooks]]\non = ["exit"]\napps = ["api"]\nexec = "notify-send omnitron"\n')
    loaded = load_config(path, environ={"HOOK_URL": "https://hooks.example/x?token=t"})
    web, run = loaded.ecosystem.hooks
    assert web.webhook == "https://hooks.example/x?token=t" and web.timeout_s == 5 and web.retry_count == 3
    assert run.exec == ["notify-send", "omnitron"] and run.timeout_s == 10 and run.retry_count == 0
    assert "token" not in repr(web) and web.describe(0) == "hooks[0] (webhook to hooks.example)"


@pytest.mark.parametrize(("hook", "problem"), [
    ('on = ["fatal"]', "hooks[0]: set exactly one of exec or webhook"),
    ('on = ["fatal"]\nexec = "x"\nwebhook = "https://a.b"', "hooks[0]: set exactly one of exec or webhook"),
    ('on = ["crashed"]\nexec = "x"', "hooks[0].on[0]: expected start|exit|restart|healthy|unhealthy|completed|fatal"),
    ('on = []\nexec = "x"', "hooks[0].on: "),
    ('on = ["fatal"]\nwebhook = "ftp://a.b/c"', "hooks[0].webhook: expected an http:// or https:// URL"),
    ('on = ["fatal"]\nwebhook = "${UNSET_URL}"', "hooks[0].webhook: expected an http:// or https:// URL"),
    ('on = ["fatal"]\nexec = "x"\napps = ["nope"]', "hooks[0].apps: unknown app 'nope'; apps: api"),
    ('on = ["fatal"]\nexec = "x"\nretries = -1', "hooks[0].retries: "),
    ('on = ["fatal"]\nexec = "x"\nsecret = 1', "hooks[0].secret: unknown key"),
])
def test_a_bad_hook_is_refused_with_its_location(tmp_path: Path, hook: str, problem: str) -> None:
    problems = problems_of(write(tmp_path, APP + "[[hooks]]\n" + hook + "\n"))
    assert any(p.startswith(problem) for p in problems), problems
    assert not any("ftp://a.b" in p for p in problems), "a URL may hold a token: never echoed"


EVENT = Event("fatal", "api", 1, pid=None, exit_code=None, reason="crash loop: exit code 1", ts=1.5, seq=42)


def test_payloads_carry_the_event_and_its_output() -> None:
    lines = [{"ts": "", "stream": "stderr", "line": "boom"}]
    body = payload(EVENT, lines)
    assert body["kind"] == "fatal" and body["seq"] == 42 and body["output"] == lines
    slack = HookConfig(on=["fatal"], webhook="https://a.b", format="slack")
    assert json.loads(webhook_body(slack, body, EVENT)) == {"text": "omnitron: api:1 fatal (crash loop: exit code 1)"}
    discord = HookConfig(on=["fatal"], webhook="https://a.b", format="discord")
    assert json.loads(webhook_body(discord, body, EVENT)) == {"content": chat_text(EVENT)}
    plain = HookConfig(on=["fatal"], webhook="https://a.b")
    assert json.loads(webhook_body(plain, body, EVENT)) == body
    env = event_env(Event("unhealthy", "api", 0, healthy=False, seq=3, ts=2.0))
    assert env["OMNITRON_EVENT_KIND"] == "unhealthy" and env["OMNITRON_EVENT_HEALTHY"] == "false"
    assert "OMNITRON_EVENT_PID" not in env, "a field that does not apply is not set"


def test_a_full_queue_drops_the_event_logs_an_error_and_counts_it() -> None:
    runner = HookRunner([HookConfig(on=["exit"], exec=["true"])], cwd="/", recent=lambda app, index, count: [],
                        queue_size=2)
    with capture_logs() as logs:
        for n in range(5):
            runner.on_event(Event("exit", "api", 0, exit_code=1, seq=n))  # nobody delivers: the queue fills
        runner.on_event(Event("start", "api", 0, seq=9))  # not a kind it wants: not queued, not dropped
    runner.close()
    assert runner.failures == 3
    assert [(e["event"], e["log_level"], e["seq"]) for e in logs] == [("hook_event_dropped", "error", n)
                                                                        for n in (2, 3, 4)]


def test_apps_narrows_and_daemon_events_have_no_app() -> None:
    worker = HookWorker(0, HookConfig(on=["fatal", "reload"], apps=["api"], exec=["true"]), cwd="/",
                        recent=lambda app, index, count: [], on_failure=lambda: None)
    assert worker.wants(EVENT) and not worker.wants(Event("fatal", "web", 0))
    assert not worker.wants(Event("reload", "omnitron", 0)) and not worker.wants(Event("exit", "api", 0))
    worker.discard()
