"""Plain config data (tables, arrays, strings, numbers, booleans): a bounded-depth copy, with the location of
whatever is not plain. Shared by the parent (TOML and JSON nesting) and the `.py` config's child process."""

from __future__ import annotations

from typing import Final

# A config is four levels deep (`apps[0].health.exec[1]`); anything far deeper is a mistake or an attack, and
# pydantic's and the reporting code's recursion would otherwise meet Python's recursion limit first.
MAX_DEPTH: Final = 32
Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """`("apps", 1, "health", "interval")` -> `apps[1].health.interval`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class NotPlain(ValueError):
    """`loc` (within the document) holds a value that is not plain data, or nests deeper than MAX_DEPTH."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def to_plain(value: object, *, keep_other: bool = False) -> object:
    """A copy of `value` as dicts (string keys), lists (tuples become lists) and scalars; NotPlain otherwise.

    With `keep_other`, a value of any other type (a TOML date) is kept as it is, for the model to judge:
    only the nesting is checked. Iterative, so a deep or self-containing value is refused, never a crash.
    """
    root: list[object] = [None]
    stack: list[tuple[object, list[object] | dict[str, object], int | str, Loc]] = [(value, root, 0, ())]
    while stack:
        item, parent, key, loc = stack.pop()
        if len(loc) > MAX_DEPTH:
            raise NotPlain(loc[:4], f"nested more than {MAX_DEPTH} levels deep (below this key); flatten it")
        out: object
        if item is None or isinstance(item, str | bool | int | float):
            out = item
        elif isinstance(item, dict):
            table: dict[str, object] = {}
            for name, child in item.items():
                if not isinstance(name, str):
                    raise NotPlain(loc, f"a key must be a string, got {type(name).__name__} {name!r:.40}")
                table[name] = None
                stack.append((child, table, name, (*loc, name)))
            out = table
        elif isinstance(item, list | tuple):
            array: list[object] = [None] * len(item)
            stack.extend((child, array, index, (*loc, index)) for index, child in enumerate(item))
            out = array
        elif keep_other:
            out = item
        else:
            raise NotPlain(
                loc,
                f"a {type(item).__name__} is not plain data (a string, number, boolean, list or dict); convert it, "
                "e.g. with str()",
            )
        if isinstance(parent, dict):
            assert isinstance(key, str)
            parent[key] = out
        else:
            assert isinstance(key, int)
            parent[key] = out
    return root[0]
