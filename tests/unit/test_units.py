"""Durations and sizes: every accepted spelling, every rejected one, and the spellings the docs print."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from omnitron.config.units import ByteSize, Duration, format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (0, 0.0),
        (5, 5.0),
        (2.5, 2.5),
        ("0", 0.0),
        ("5", 5.0),
        ("0s", 0.0),
        ("250ms", 0.25),
        ("5s", 5.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration_accepts(given: object, seconds: float) -> None:
    assert parse_duration(given) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("5q", "expected a duration"),
        ("", "expected a duration"),
        ("s", "expected a duration"),
        ("-5s", "expected a duration"),
        ("5 s s", "expected a duration"),
        (-1, "cannot be negative"),
        (float("inf"), "finite"),
        (float("nan"), "finite"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([5], "expected a duration"),
    ],
)
def test_parse_duration_rejects(given: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_duration(given)


@pytest.mark.parametrize(
    ("given", "size"),
    [
        (0, 0),
        (1048576, 1048576),
        ("512", 512),
        ("512B", 512),
        ("64k", 64_000),
        ("64KiB", 65_536),
        ("512MB", 512_000_000),
        ("512mb", 512_000_000),
        ("512MiB", 512 * 1024**2),
        ("1GiB", 1024**3),
        ("1.5GB", 1_500_000_000),
        ("2T", 2 * 1000**4),
    ],
)
def test_parse_size_accepts(given: object, size: int) -> None:
    assert parse_size(given) == size


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("512XB", "expected a size"),
        ("MB", "expected a size"),
        ("", "expected a size"),
        (-1, "cannot be negative"),
        (float("inf"), "finite"),
        (False, "expected a size"),
        ({"mb": 5}, "expected a size"),
    ],
)
def test_parse_size_rejects(given: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_size(given)


class _Holder(BaseModel):
    timeout: Duration = 1.0
    limit: ByteSize = 0


def test_annotated_types_validate_inside_models() -> None:
    held = _Holder.model_validate({"timeout": "250ms", "limit": "1KiB"})
    assert (held.timeout, held.limit) == (0.25, 1024)
    with pytest.raises(ValidationError, match="expected a duration"):
        _Holder.model_validate({"timeout": "soon"})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.1, "100ms"), (0.25, "250ms"), (1.5, "1.5s"), (5, "5s"), (90, "1m30s"), (3600, "1h")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0"), (7, "7"), (1024, "1KiB"), (10 * 1024**2, "10MiB"), (512_000_000, "512MB")]
)
def test_format_size_round_trips(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size
