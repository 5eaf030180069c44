"""docs/configuration.md: its key reference matches the model, and every key of every section is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omnitron.config.docs import BEGIN, DOCUMENT, END, SECTIONS, main, render_reference, update_document


def test_committed_reference_is_up_to_date() -> None:
    current = DOCUMENT.read_text(encoding="utf-8")
    assert update_document(current) == current, (
        "docs/configuration.md is out of date with omnitron/config/model.py; "
        "run `python -m omnitron.config.docs` and commit the result"
    )


def test_every_key_has_a_row_with_a_description() -> None:
    reference = render_reference()
    for header, model, _ in SECTIONS:
        assert f"### `{header}`" in reference
        for name, field in model.model_fields.items():
            assert f"| `{name}` |" in reference
            assert field.description, f"{model.__name__}.{name} has no description= in model.py"


def test_defaults_use_config_spellings() -> None:
    reference = render_reference()
    assert '| `initial` | duration | `"100ms"` |' in reference
    assert '| `max_size` | size | `"10MiB"` |' in reference
    assert "| `health_port` | integer | `9800` |" in reference
    assert "`OMNITRON_HEALTH_PORT`" in reference
    assert "| `name` | string | required |" in reference


def test_check_mode_fails_on_a_stale_document_and_write_mode_fixes_it(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# Config\n\n{BEGIN}\n| old | table |\n{END}\ntail\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "omnitron.config.docs", "--check", "--path", str(stale)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "python -m omnitron.config.docs" in result.stderr
    assert main(["--path", str(stale)]) == 0
    fixed = stale.read_text(encoding="utf-8")
    assert "| old | table |" not in fixed and fixed.endswith(f"{END}\ntail\n")
    assert main(["--check", "--path", str(stale)]) == 0


def test_document_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks the markers"):
        update_document("# no markers\n")
