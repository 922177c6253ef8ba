"""The optional `evaluate` extra: scikit-learn and matplotlib, imported only when evaluation runs."""

from __future__ import annotations

import importlib

INSTALL_HINT = "pip install 'mltrail[evaluate]'"


def require_evaluate_extra() -> None:
    """Import scikit-learn and matplotlib, or raise an ImportError that says how to install them."""
    missing = []
    for module, dist in (("sklearn", "scikit-learn"), ("matplotlib", "matplotlib")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise ImportError(
            f"mltrail.evaluate needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed: run {INSTALL_HINT}.")
