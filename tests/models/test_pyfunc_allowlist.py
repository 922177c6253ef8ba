"""pyfunc loading rules that need no framework: the loader allowlist and missing flavors."""

from __future__ import annotations

import sys

import pytest

from mltrail import pyfunc
from mltrail.errors import InvalidParameterValue
from mltrail.models import Model
from mltrail.models.pyfunc import allowed_loader_modules, register_loader_module


def _write_model(path, loader_module):
    path.mkdir(parents=True, exist_ok=True)
    m = Model()
    if loader_module is not None:
        m.add_flavor("python_function", loader_module=loader_module, python_version="3.11.0")
    else:
        m.add_flavor("sklearn", pickled_model="model.pkl")
    m.save(str(path / "MLmodel"))
    return path


def test_unknown_loader_is_refused_and_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "mltrail_evil_loader.py").write_text(
        f"open({str(marker)!r}, 'w').write('side effect')\n"
        "def _load_pyfunc(path, meta=None):\n    raise SystemExit('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model_dir = _write_model(tmp_path / "model", "mltrail_evil_loader")
    with pytest.raises(InvalidParameterValue) as e:
        pyfunc.load_model(str(model_dir))
    msg = str(e.value)
    assert "'mltrail_evil_loader'" in msg and "not a registered flavor" in msg and "mltrail.tensorflow" in msg
    assert "mltrail_evil_loader" not in sys.modules
    assert not marker.exists()


def test_model_without_pyfunc_flavor(tmp_path):
    model_dir = _write_model(tmp_path / "model", None)
    with pytest.raises(InvalidParameterValue, match=r"no python_function flavor \(its flavors: \['sklearn'\]\)"):
        pyfunc.load_model(str(model_dir))


def test_allowlist_contents_and_registration():
    allowed = allowed_loader_modules()
    assert {"mltrail.tensorflow", "mltrail.keras", "mlflow.tensorflow", "mlflow.keras"} <= set(allowed)
    with pytest.raises(InvalidParameterValue, match="must be mltrail modules"):
        register_loader_module("evil", "os")
    assert "evil" not in allowed_loader_modules()
