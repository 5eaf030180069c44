"""Durations ("250ms", "5s", "2m", "1m30s") and sizes ("512MB") as pydantic types: float seconds and int bytes."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h)\s*)+$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
# fmt: off
_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}
# fmt: on
_DURATION_HINT = 'expected a duration such as 5, "250ms", "5s", "2m" or "1m30s"'
_SIZE_HINT = 'expected a size such as 1048576, "512MB" or "1GiB"'


def _number(value: int | float, kind: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"a {kind} must be a finite number")
    if value < 0:
        raise ValueError(f"a {kind} cannot be negative")
    return value


def parse_duration(value: object) -> float:
    """Seconds as a float, from a non-negative number or a string such as "250ms", "5s", "2m", "1h", "1m30s"."""
    if isinstance(value, bool):
        raise ValueError(_DURATION_HINT)
    if isinstance(value, int | float):
        return float(_number(value, "duration"))
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.match(text):
            return float(text)
        if _DURATION.match(text):
            return sum(float(n) * _DURATION_FACTORS[unit] for n, unit in _DURATION_PART.findall(text))
    raise ValueError(f"{_DURATION_HINT}, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes as an int, from a non-negative number or a string such as "512MB", "1GiB", "64k" (K = 1000, Ki = 1024)."""
    if isinstance(value, bool):
        raise ValueError(_SIZE_HINT)
    if isinstance(value, int | float):
        return int(_number(value, "size"))
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_FACTORS[(match.group(2) or "").lower()])
    raise ValueError(f"{_SIZE_HINT}, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration for docs and messages: 0.1 -> "100ms", 90 -> "1m30s"."""
    if seconds == 0:
        return "0s"
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms" if seconds < 1 else f"{seconds:g}s"
    whole = millis // 1000
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts)


def format_size(size: int) -> str:
    """The shortest exact spelling of a size: 10485760 -> "10MiB", 512000000 -> "512MB"."""
    units = [("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)]
    units += [("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)]
    spellings = [f"{size // factor}{unit}" for unit, factor in units if size and size % factor == 0]
    return min(spellings, key=len, default=str(size))


Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
