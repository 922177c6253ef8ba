"""Models that the real MLflow 3.17.2 saved (tests/keras/fixtures, made by make_fixtures.py) load with mltrail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltrail import pyfunc
from mltrail.errors import InvalidParameterValue

pytestmark = pytest.mark.tf

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLAIN = ("keras_default", "keras_exported", "tensorflow")
PICKLED = str(FIXTURES / "tensorflow_pickled")


@pytest.fixture(scope="module")
def expected():
    with open(FIXTURES / "expected.json") as fh:
        data = json.load(fh)
    data["x"] = np.asarray(data["inputs"], dtype="float32")
    return data


def _call(model, x):
    return np.asarray(model(x) if callable(model) else model.serve(x))


@pytest.mark.parametrize("kind", PLAIN)
def test_both_flavor_loaders_read_mlflows_models(expected, kind):
    import mltrail.keras as mk
    import mltrail.tensorflow as mtf

    want = expected["models"][kind]["model"]
    for load in (mk.load_model, mtf.load_model):
        model = load(str(FIXTURES / kind))
        np.testing.assert_allclose(_call(model, expected["x"]), want, atol=1e-6)


@pytest.mark.parametrize("kind", PLAIN)
def test_pyfunc_predicts_what_mlflows_pyfunc_did(expected, kind):
    model = pyfunc.load_model(str(FIXTURES / kind))
    assert model.loader_module == ("mlflow.tensorflow" if kind == "tensorflow" else "mlflow.keras")
    assert model.metadata.get_input_schema() is not None
    want = expected["models"][kind]["mlflow_pyfunc"]
    np.testing.assert_allclose(np.asarray(model.predict(expected["x"])), want, atol=1e-6)
    # a tensor signature turns a DataFrame into an array first, so the answer is an array, as in MLflow
    out = model.predict(pd.DataFrame(expected["x"], index=[7, 8, 9]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, want, atol=1e-6)


def test_mlflows_input_example_is_read(expected):
    from mltrail.models import Model

    example = Model.load(str(FIXTURES / "keras_default")).load_input_example(str(FIXTURES / "keras_default"))
    np.testing.assert_allclose(np.asarray(example), expected["x"][:2], atol=1e-6)


def test_pickled_custom_objects_need_both_opt_ins(expected, monkeypatch):
    import mltrail.keras as mk
    import mltrail.tensorflow as mtf

    monkeypatch.delenv("MLTRAIL_ALLOW_PICKLE", raising=False)
    for attempt in (lambda: mk.load_model(PICKLED), lambda: mtf.load_model(PICKLED),
                    lambda: pyfunc.load_model(PICKLED)):
        with pytest.raises(InvalidParameterValue) as e:
            attempt()
        message = str(e.value)
        assert message.startswith("Deserializing custom objects using cloudpickle is disallowed")
        assert "custom_objects.cloudpickle" in message and "allow_pickle=True" in message
        assert "MLTRAIL_ALLOW_PICKLE=true" in message and "Could not locate function 'scaled_tanh'" in message
    with pytest.raises(InvalidParameterValue, match=r"missing: the environment variable MLTRAIL_ALLOW_PICKLE=true\)"):
        mk.load_model(PICKLED, allow_pickle=True)
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    with pytest.raises(InvalidParameterValue, match=r"missing: allow_pickle=True \(received allow_pickle=False\)\)"):
        mk.load_model(PICKLED)
    want = expected["models"]["tensorflow_pickled"]["model"]
    np.testing.assert_allclose(_call(mk.load_model(PICKLED, allow_pickle=True), expected["x"]), want, atol=1e-6)
    np.testing.assert_allclose(_call(mtf.load_model(PICKLED, allow_pickle=True), expected["x"]), want, atol=1e-6)
    served = pyfunc.load_model(PICKLED, allow_pickle=True).predict(expected["x"])
    np.testing.assert_allclose(np.asarray(served), want, atol=1e-6)


def test_pickled_model_loads_without_the_pickle_when_the_user_gives_the_objects(expected, monkeypatch):
    import keras

    import mltrail.keras as mk

    monkeypatch.delenv("MLTRAIL_ALLOW_PICKLE", raising=False)

    def scaled_tanh(x):  # the user's own copy of the custom activation, as they would import it
        return 2.0 * keras.ops.tanh(x)

    model = mk.load_model(PICKLED, custom_objects={"scaled_tanh": scaled_tanh})
    np.testing.assert_allclose(_call(model, expected["x"]), expected["models"]["tensorflow_pickled"]["model"],
                               atol=1e-6)
