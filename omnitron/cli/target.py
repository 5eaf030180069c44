"""`APP[:N]`, the argument that names an app or one instance of it: one grammar for every command that takes it.

The commands word their own errors (`stop api:x` and `logs api:x` explain it differently), so the parser
says only what is wrong.
"""

from __future__ import annotations


class TargetError(ValueError):
    """`text` is not APP or APP:N: nothing before the ':' (`is_app_missing`), or N is not a non-negative integer."""

    def __init__(self, text: str, *, is_app_missing: bool) -> None:
        super().__init__(text)
        self.text = text
        self.is_app_missing = is_app_missing


def parse_target(text: str) -> tuple[str, int | None]:
    """`api` -> ("api", None); `api:1` -> ("api", 1); TargetError for anything else (`:1`, `api:`, `api:x`)."""
    app, sep, number = text.partition(":")
    if not app:
        raise TargetError(text, is_app_missing=True)
    if not sep:
        return app, None
    # isdigit alone accepts "١" and "²": N is ASCII digits only.
    if not (number.isascii() and number.isdigit()):
        raise TargetError(text, is_app_missing=False)
    return app, int(number)
