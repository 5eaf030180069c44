"""Durations ("250ms", "5s", "2m") and sizes ("512MB") as pydantic types: float seconds and int bytes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}


def parse_duration(value: object) -> float:
    """Seconds as a float, from a non-negative number or a string such as "250ms", "5s", "2m", "1h"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5, \"250ms\", \"5s\" or \"2m\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    raise ValueError(f"expected a duration such as 5, \"250ms\", \"5s\" or \"2m\", got {value!r}")


def parse_size(value: object) -> int:
    """Bytes as an int, from a non-negative number or a string such as "512MB", "1GiB", "64k"."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1048576, \"512MB\" or \"1GiB\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return int(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_FACTORS[(match.group(2) or "").lower()])
    raise ValueError(f"expected a size such as 1048576, \"512MB\" or \"1GiB\", got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
