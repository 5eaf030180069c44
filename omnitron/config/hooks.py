"""`[[hooks]]`: which events to deliver, and how (a command or a webhook); the model and its resolution."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnitron.config.units import Duration

HookKind = Literal["start", "exit", "restart", "healthy", "unhealthy", "completed", "fatal", "stop", "scale",
                   "reload", "daemon_start", "daemon_stop"]


class HookConfig(BaseModel):
    """One `[[hooks]]` table: `on` kinds (narrowed by `apps`), delivered by `exec` or `webhook`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: list[HookKind] = Field(min_length=1, description="event kinds to deliver, e.g. `[\"fatal\", \"restart\"]`")
    apps: list[str] | None = Field(default=None, description="only these apps' events (default: every app's)")
    exec: list[str] | None = Field(
        default=None, description="command run per event: the event as JSON on stdin and `OMNITRON_EVENT_*` env vars"
    )
    webhook: str | None = Field(
        default=None, repr=False, description="http(s) URL the event is POSTed to as JSON; never printed"
    )
    format: Literal["json", "slack", "discord"] = Field(
        default="json", description="the webhook body: the event (`json`), or a chat message (`slack`, `discord`)"
    )
    timeout: Duration | None = Field(
        default=None, description="per attempt; `exec` is killed past it (default 10s for exec, 5s for webhook)"
    )
    retries: int | None = Field(
        default=None, ge=0, le=20, description="attempts after the first failure (default 3 for webhook, 0 for exec)"
    )
    backoff: Duration = Field(default=1.0, description="delay before the first retry; doubles for each next one")
    output_lines: int = Field(default=5, ge=0, le=200, description="the instance's last output lines in the payload")

    @field_validator("exec", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        from omnitron.config.model import split_command

        return split_command(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> HookConfig:
        if (self.exec is None) == (self.webhook is None):
            raise ValueError("set exactly one of exec or webhook")
        return self

    @property
    def timeout_s(self) -> float:
        return self.timeout if self.timeout is not None else (10.0 if self.exec is not None else 5.0)

    @property
    def retry_count(self) -> int:
        return self.retries if self.retries is not None else (0 if self.exec is not None else 3)

    def describe(self, index: int) -> str:
        """`hooks[0] (exec notify-send)` or `hooks[1] (webhook to hooks.slack.com)`: never the URL's secrets."""
        if self.exec is not None:
            return f"hooks[{index}] (exec {self.exec[0]})"
        return f"hooks[{index}] (webhook to {urlsplit(self.webhook or '').hostname})"
