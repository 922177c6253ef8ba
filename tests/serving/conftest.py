"""Saved tiny Keras models shared by the serving tests (built once per test process)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sm():
    import serving_models

    return serving_models


@pytest.fixture(scope="session")
def saved_models(sm, tmp_path_factory):
    """{kind: model directory}: mlp (signature from an example), multi (named in/out), seq (variable
    length), nosig (no signature), params (a signature with a `scale` parameter)."""
    import numpy as np

    import mltrail.tensorflow as mtf
    from mltrail.models import ModelSignature, infer_signature
    from mltrail.types import Schema, TensorSpec

    root = tmp_path_factory.mktemp("serving-models")
    x = sm.random_rows(4)
    out = {}
    out["mlp"] = str(root / "mlp")
    mtf.save_model(sm.mlp(), out["mlp"], input_example=x[:2])
    out["multi"] = str(root / "multi")
    rng = np.random.default_rng(3)
    mtf.save_model(sm.two_in_two_out(), out["multi"],
                   input_example={"a": rng.random((2, 4)).astype("float32"), "b": rng.random((2, 3)).astype("float32")})
    out["seq"] = str(root / "seq")
    mtf.save_model(sm.variable_length(), out["seq"], signature=ModelSignature(
        Schema([TensorSpec(np.dtype("float32"), (-1, -1, 4))])))
    out["nosig"] = str(root / "nosig")
    mtf.save_model(sm.mlp(), out["nosig"])
    out["params"] = str(root / "params")
    model = sm.mlp()
    mtf.save_model(model, out["params"], signature=infer_signature(x, np.asarray(model(x)), params={"scale": 1.0}))
    return out


@pytest.fixture(scope="session")
def loaded(saved_models):
    """{kind: PyFuncModel}."""
    import mltrail.pyfunc

    return {kind: mltrail.pyfunc.load_model(path) for kind, path in saved_models.items()}
