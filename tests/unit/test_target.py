"""APP[:N], the one grammar of start/stop/restart and logs targets."""

from __future__ import annotations

import pytest

from omnitron.cli.target import TargetError, parse_target


@pytest.mark.parametrize(
    ("text", "expected"), [("api", ("api", None)), ("api:0", ("api", 0)), ("my-app_2:12", ("my-app_2", 12))]
)
def test_parse_target(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "is_app_missing"),
    [
        ("", True),
        (":1", True),
        (":", True),
        ("api:", False),
        ("api:-1", False),
        ("api:x", False),
        ("api:1:2", False),
        ("api:1.5", False),
        ("api:١", False),
        ("api:²", False),
    ],
)
def test_parse_target_says_what_is_wrong(text: str, is_app_missing: bool) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(text)
    assert (caught.value.text, caught.value.is_app_missing) == (text, is_app_missing)
