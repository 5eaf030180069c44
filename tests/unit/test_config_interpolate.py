"""`${VAR}` interpolation: defaults, `$$`, unset variables, per-instance names kept for the runtime, bad syntax."""

from __future__ import annotations

import pytest

from omnitron.config.interpolate import PER_INSTANCE, InterpolationError, MissingVariable, interpolate

ENV = {"HOST": "db.local", "EMPTY": "", "PRICE": "5$", "PORT": "7777"}


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("plain", "plain"),
        ("${HOST}", "db.local"),
        ("pg://${HOST}:5432/app", "pg://db.local:5432/app"),
        ("${MISSING}", ""),
        ("a${MISSING}b", "ab"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${HOST:-fallback}", "db.local"),
        ("${MISSING:-}", ""),
        ("${MISSING:-${HOST}}", "db.local"),
        ("${MISSING:-a:b}", "a:b"),
        ("$$", "$"),
        ("$${HOST}", "${HOST}"),
        ("cost $$5", "cost $5"),
        ("$HOST", "$HOST"),
        ("trailing $", "trailing $"),
        ("${PRICE}", "5$"),
        ("${PORT}", "7777"),
    ],
)
def test_interpolate_full_pass(text: str, result: str) -> None:
    assert interpolate(text, ENV) == result


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("http://127.0.0.1:${PORT}/health", "http://127.0.0.1:${PORT}/health"),
        ("${OMNITRON_INSTANCE}", "${OMNITRON_INSTANCE}"),
        ("${PORT:-3000}", "${PORT:-3000}"),
        ("${HOST}:${PORT}", "db.local:${PORT}"),
        # A partial pass stays re-interpolatable: literal dollars stay escaped, substituted ones get escaped.
        ("$$", "$$"),
        ("${PRICE}", "5$$"),
    ],
)
def test_interpolate_keeps_per_instance_names(text: str, result: str) -> None:
    assert interpolate(text, ENV, keep=PER_INSTANCE) == result


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("--port ${PORT}", "--port 3001"),
        ("$$PORT=${PORT}", "$PORT=3001"),
        ("${PRICE}/${OMNITRON_INSTANCE}", "5$/1"),
        ("${MISSING:-${PORT}}", "3001"),
    ],
)
def test_partial_then_runtime_pass_equals_one_full_pass(text: str, final: str) -> None:
    partial = interpolate(text, ENV, keep=PER_INSTANCE)
    instance_env = {**ENV, "PORT": "3001", "OMNITRON_INSTANCE": "1"}
    assert interpolate(partial, instance_env) == final


@pytest.mark.parametrize("text", ["${", "${HOST", "${}", "${1ABC}", "${HOST:default}", "${HO-ST}", "x ${A:-${B}"])
def test_malformed_reference_is_an_error_that_does_not_quote_the_text(text: str) -> None:
    secret_text = text + "hunter2"
    with pytest.raises(InterpolationError) as caught:
        interpolate(secret_text, ENV)
    assert "hunter2" not in str(caught.value)
    assert "character" in str(caught.value)


def test_a_required_variable_substitutes_when_set_and_is_an_error_naming_it_when_unset_or_empty() -> None:
    """Regression test for #20 item 4: an unset ${VAR} silently became empty; `${VAR:?message}` refuses."""
    assert interpolate("pg://${HOST:?set the database host}/app", ENV) == "pg://db.local/app"
    assert interpolate("${PRICE:?x}", ENV, keep=PER_INSTANCE) == "5$$"
    for name in ("MISSING", "EMPTY"):
        with pytest.raises(MissingVariable) as caught:
            interpolate(f"pg://${{{name}:?set the database host}}/app", ENV)
        assert str(caught.value) == (f"${{{name}}} is not set: set the database host (set {name} in the daemon's "
                                     "environment)")
    with pytest.raises(MissingVariable, match="required"):
        interpolate("${MISSING:?}", ENV)
    assert interpolate("${PORT:?needs a port}", ENV, keep=PER_INSTANCE) == "${PORT:?needs a port}"
