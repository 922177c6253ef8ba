"""Shared helpers for the custom-model tests: writing a model file (models from code) into a directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def write_model_file(tmp_path):
    """write_model_file(source, name="model.py") -> the path of a new model file holding `source` (dedented)."""

    def write(source: str, name: str = "model.py") -> str:
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return str(path)

    return write
