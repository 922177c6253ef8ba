"""`mltrail.pyfunc`'s smaller MLflow names: add_to_model, EnvType, the deprecated load_pyfunc, __all__."""

from __future__ import annotations

import pandas as pd
import pytest

import mltrail.pyfunc as pyfunc
from mltrail.models import Model


def test_add_to_model_writes_mlflows_keys():
    model = pyfunc.add_to_model(Model(), loader_module="mlflow.pyfunc.model", data="data", code="code",
                                conda_env="conda.yaml", python_env="python_env.yaml", model_config={"k": 1},
                                streamable=False)
    flavor = model.flavors[pyfunc.FLAVOR_NAME]
    assert flavor[pyfunc.MAIN] == "mlflow.pyfunc.model" and flavor[pyfunc.DATA] == "data"
    assert flavor[pyfunc.CODE] == "code" and flavor["config"] == {"k": 1} and flavor["streamable"] is False
    assert flavor[pyfunc.ENV] == {pyfunc.EnvType.CONDA: "conda.yaml", pyfunc.EnvType.VIRTUALENV: "python_env.yaml"}
    assert flavor[pyfunc.PY_VERSION].count(".") == 2
    with pytest.raises(NotImplementedError):
        pyfunc.EnvType()


def test_load_pyfunc_is_the_deprecated_load_model(tmp_path, write_model_file):
    code = write_model_file("import mltrail\nmltrail.models.set_model(lambda df: df + 1)\n")
    pyfunc.save_model(tmp_path / "m", python_model=code, pip_requirements=["pandas"])
    with pytest.warns(FutureWarning, match="load_pyfunc is deprecated"):
        model = pyfunc.load_pyfunc(str(tmp_path / "m"))
    assert model.predict(pd.DataFrame({"x": [1]}))["x"].tolist() == [2]


def test_every_exported_name_exists():
    assert all(hasattr(pyfunc, name) for name in pyfunc.__all__)
    assert pyfunc.get_default_pip_requirements()[0].startswith("mltrail")
    assert {"pip": pyfunc.get_default_pip_requirements()} in pyfunc.get_default_conda_env()["dependencies"]
