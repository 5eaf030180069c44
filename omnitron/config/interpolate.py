"""`${VAR}`, `${VAR:-default}` and `${VAR:?message}` substitution in config strings, docker-compose style, with
`$$` for a literal `$`.

Rules:
- `${VAR}` becomes the value of VAR, or "" when VAR is unset (docker-compose behaviour).
- `${VAR:-default}` becomes `default` when VAR is unset or empty; the default may itself hold `${...}` references.
- `${VAR:?message}` is an error naming VAR (and the message) when VAR is unset or empty, as in a POSIX shell.
- `$$` is a literal `$`. A `$` not followed by `{` or `$` is kept as is (`$HOME` is not substituted).
- Names listed in `keep` (the per-instance `PORT` and `OMNITRON_INSTANCE`) are left untouched. Such a partial
  pass must be resolvable again later, so it also keeps `$$` as `$$` and escapes every `$` it substitutes in;
  the runtime then calls `interpolate(text, instance_env)` once per instance to finish the job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PER_INSTANCE: frozenset[str] = frozenset({"PORT", "OMNITRON_INSTANCE", "LISTEN_FD"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A malformed `${...}` reference; the message never quotes the text, which may hold a secret."""


class MissingVariable(InterpolationError):
    """`${VAR:?message}` with VAR unset or empty: names VAR and the config author's message, never a value."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        detail = message.strip() or "required"
        fix = f"set {name} in the daemon's environment"
        if name == "PORT":
            fix = f"give the app a `port`, or {fix}"
        super().__init__(f"${{{name}}} is not set: {detail} ({fix})")


def interpolate(text: str, mapping: Mapping[str, str], *, keep: frozenset[str] = frozenset()) -> str:
    """`text` with every `${VAR}` / `${VAR:-default}` replaced from `mapping`, except names in `keep`."""
    if "$" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        dollar = text.find("$", pos)
        if dollar < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$$" if keep else "$")
            pos = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_substitute(text, dollar, end, mapping, keep))
            pos = end + 1
        else:
            out.append("$")
            pos = dollar + 1


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the reference whose body starts at `start` (defaults may nest `${...}`)."""
    depth = 1
    index = start
    while index < len(text):
        char = text[index]
        if char == "$" and text[index + 1 : index + 2] in ("{", "$"):
            if text[index + 1] == "{":
                depth += 1
            index += 2
            continue
        if char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise InterpolationError(f"unterminated ${{ at character {start - 1}; close it with }} or write $$ for a literal $")


def _substitute(text: str, dollar: int, end: int, mapping: Mapping[str, str], keep: frozenset[str]) -> str:
    body = text[dollar + 2 : end]
    name_match = _NAME.match(body)
    if name_match is None:
        raise InterpolationError(
            f"invalid variable name in ${{...}} at character {dollar}; names match [A-Za-z_][A-Za-z0-9_]*"
        )
    name = name_match.group(0)
    rest = body[name_match.end() :]
    if rest and not rest.startswith((":-", ":?")):
        raise InterpolationError(
            f"invalid ${{...}} reference at character {dollar}; use ${{VAR}}, ${{VAR:-default}} or ${{VAR:?message}}"
        )
    if name in keep:
        return text[dollar : end + 1]
    value = mapping.get(name, "")
    if rest.startswith(":?"):
        if value == "":
            raise MissingVariable(name, rest[2:])
        return value.replace("$", "$$") if keep else value
    if rest and value == "":
        # The default is interpolated with the same rules, so it is already escaped for a partial pass.
        return interpolate(rest[2:], mapping, keep=keep)
    return value.replace("$", "$$") if keep else value


def bare_references(text: str) -> set[str]:
    """Names that `text` uses with no default (`${VAR}` or `${VAR:?message}`), at its top level: the ones
    that end up empty (or an error) when unset. Malformed text gives what was read before the fault."""
    names: set[str] = set()
    pos = 0
    try:
        while (dollar := text.find("$", pos)) >= 0:
            following = text[dollar + 1 : dollar + 2]
            if following != "{":
                pos = dollar + (2 if following == "$" else 1)
                continue
            end = _closing_brace(text, dollar + 2)
            body = text[dollar + 2 : end]
            match = _NAME.match(body)
            if match is not None and not body[match.end() :].startswith(":-"):
                names.add(match.group(0))
            pos = end + 1
    except InterpolationError:
        pass  # reported by interpolate() where it matters
    return names
