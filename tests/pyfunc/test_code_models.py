"""Models from code: a model file calling `set_model`, saved, laid out as MLflow lays it out, loaded and predicted;
with `model_config`, `artifacts`, `code_paths`, params, predict without context, streaming and type hints."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml

import mltrail
import mltrail.pyfunc as pyfunc
from mltrail.errors import InvalidParameterValue, MltrailException

ADD_N = """
    import mltrail as mlflow


    class AddN(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.n = context.model_config["n"]
            with open(context.artifacts["scale"], encoding="utf-8") as fh:
                self.scale = float(fh.read())

        def predict(self, context, model_input, params=None):
            import helpers  # from code_paths: on sys.path at load time

            factor = (params or {}).get("factor", 1.0)
            return helpers.add(model_input * self.scale, self.n) * factor


    mlflow.models.set_model(AddN())
"""


@pytest.fixture
def saved(tmp_path, write_model_file):
    code = write_model_file(ADD_N)
    helpers = tmp_path / "helpers.py"
    helpers.write_text("def add(frame, n):\n    return frame + n\n")
    scale = tmp_path / "scale.txt"
    scale.write_text("2")
    path = tmp_path / "model"
    pyfunc.save_model(path, python_model=code, model_config={"n": 3}, artifacts={"scale": str(scale)},
                      code_paths=[str(helpers)], input_example=pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    return str(path), code


def test_layout_is_mlflows(saved):
    path, code = saved
    mlmodel = yaml.safe_load(open(os.path.join(path, "MLmodel")))
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavor["model_code_path"] == code
    assert flavor["config"] == {"n": 3}
    assert flavor["artifacts"] == {"scale": {"path": "artifacts/scale.txt", "uri": os.path.join(os.path.dirname(
        os.path.dirname(code)), "scale.txt")}}
    assert flavor["code"] == "code" and flavor["streamable"] is False
    assert flavor["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert "python_model" not in flavor
    files = set(os.listdir(path))
    assert {"model.py", "MLmodel", "artifacts", "code", "requirements.txt", "conda.yaml", "python_env.yaml",
            "input_example.json"} <= files
    assert "python_model.pkl" not in files
    assert os.listdir(os.path.join(path, "code")) == ["helpers.py"]
    # the signature came from the example and the model's output on it
    assert "signature" in mlmodel and '"name": "a"' in mlmodel["signature"]["inputs"]


def test_load_and_predict(saved):
    path, _ = saved
    model = pyfunc.load_model(path)
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert model.predict(frame).to_dict("list") == {"a": [5.0, 7.0], "b": [9.0, 11.0]}
    assert model.loader_module == "mlflow.pyfunc.loaders.code_model"
    assert model.model_config == {"n": 3}
    inner = model.unwrap_python_model()
    assert type(inner).__name__ == "AddN" and inner.n == 3 and inner.scale == 2.0
    assert model.input_example.to_dict("list") == frame.to_dict("list")
    with pytest.raises(NotImplementedError, match="get_raw_model"):
        model.get_raw_model()


def test_params_declared_in_the_signature_reach_predict(tmp_path, write_model_file):
    from mltrail.models import infer_signature

    code = write_model_file("""
        import mltrail as mlflow


        class Scale(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * params["factor"]


        mlflow.models.set_model(Scale())
    """)
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    pyfunc.save_model(tmp_path / "m", python_model=code,
                      signature=infer_signature(frame, frame, params={"factor": 2.0}))
    model = pyfunc.load_model(str(tmp_path / "m"))
    assert model.predict(frame)["a"].tolist() == [2.0, 4.0]  # the default from the signature
    assert model.predict(frame, params={"factor": 10.0})["a"].tolist() == [10.0, 20.0]


def test_load_time_model_config_overrides_saved_keys_only(saved, caplog):
    path, _ = saved
    model = pyfunc.load_model(path, model_config={"n": 100, "unknown": 1})
    assert model.unwrap_python_model().n == 100
    assert "unknown" in caplog.text


def test_the_signature_is_enforced(saved):
    path, _ = saved
    model = pyfunc.load_model(path)
    with pytest.raises(InvalidParameterValue, match="b"):
        model.predict(pd.DataFrame({"a": [1.0]}))


def test_predict_without_context_streaming_and_list_hints(tmp_path, write_model_file):
    code = write_model_file("""
        from mltrail.models import set_model
        from mltrail.pyfunc import PythonModel


        class Shout(PythonModel):
            def predict(self, model_input: list[str], params=None) -> list[str]:
                return [s.upper() for s in model_input]

            def predict_stream(self, model_input: list[str], params=None):
                for s in model_input:
                    yield s.upper()


        set_model(Shout())
    """)
    pyfunc.save_model(tmp_path / "m", python_model=code)
    assert yaml.safe_load(open(tmp_path / "m" / "MLmodel"))["flavors"]["python_function"]["streamable"] is True
    model = pyfunc.load_model(str(tmp_path / "m"))
    # a list[str] annotation gets the first string column of a DataFrame
    assert model.predict(pd.DataFrame({"n": [1, 2], "text": ["a", "b"]})) == ["A", "B"]
    assert list(model.predict_stream(["x", "y"])) == ["X", "Y"]


def test_predict_stream_refused_when_not_streamable(saved):
    path, _ = saved
    with pytest.raises(MltrailException, match="does not support predict_stream"):
        pyfunc.load_model(path).predict_stream(pd.DataFrame({"a": [1.0], "b": [2.0]}))


def test_a_callable_model_from_code(tmp_path, write_model_file):
    code = write_model_file("""
        import mltrail as mlflow

        mlflow.models.set_model(lambda frame: frame * 2)
    """)
    pyfunc.save_model(tmp_path / "m", python_model=code, input_example=pd.DataFrame({"x": [1, 2]}))
    assert pyfunc.load_model(str(tmp_path / "m")).predict(pd.DataFrame({"x": [3, 4]}))["x"].tolist() == [6, 8]


def test_model_file_errors(tmp_path, write_model_file):
    missing = str(tmp_path / "nowhere" / "model")
    with pytest.raises(InvalidParameterValue, match=r"does not exist.*Perhaps you meant '.*model\.py'"):
        pyfunc.save_model(tmp_path / "a", python_model=missing)
    silent = write_model_file("x = 1\n", "silent.py")
    with pytest.raises(MltrailException, match="set_model"):
        pyfunc.save_model(tmp_path / "b", python_model=silent)
    broken = write_model_file("raise RuntimeError('boom')\n", "broken.py")
    with pytest.raises(MltrailException, match="Failed to run user code from .*broken.py. Error: boom"):
        pyfunc.save_model(tmp_path / "c", python_model=broken)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_set_model_refuses_what_is_not_a_model():
    with pytest.raises(InvalidParameterValue, match="Model should either be an instance of PythonModel"):
        mltrail.models.set_model("model.py")
    with pytest.raises(InvalidParameterValue, match="received int"):
        mltrail.models.set_model(3)


def test_save_refuses_an_existing_directory_and_a_loader_module(saved, tmp_path, write_model_file):
    path, code = saved
    with pytest.raises(MltrailException, match="already exists and is not empty"):
        pyfunc.save_model(path, python_model=code)
    with pytest.raises(InvalidParameterValue, match="loader_module"):
        pyfunc.save_model(tmp_path / "x", loader_module="os", data_path="data")


def test_an_input_example_that_does_not_match_the_signature_is_refused(tmp_path, write_model_file):
    from mltrail.models import ModelSignature
    from mltrail.types import ColSpec, Schema

    code = write_model_file("import mltrail\nmltrail.models.set_model(lambda df: df)\n")
    signature = ModelSignature(Schema([ColSpec("double", "a")]))
    with pytest.raises(InvalidParameterValue, match="Input example does not match the model signature"):
        pyfunc.save_model(tmp_path / "m", python_model=code, signature=signature,
                          input_example=pd.DataFrame({"b": [1.0]}))


def test_artifacts_with_the_same_name_get_numbered_folders(tmp_path, write_model_file):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.txt").write_text(folder)
    code = write_model_file("""
        import mltrail as mlflow


        class Read(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                self.texts = {k: open(v).read() for k, v in context.artifacts.items() if k != "folder"}
                self.folder = context.artifacts["folder"]

            def predict(self, context, model_input, params=None):
                return [self.texts[k] for k in model_input]


        mlflow.models.set_model(Read())
    """)
    artifacts = {"a": str(tmp_path / "one" / "data.txt"), "b": str(tmp_path / "two" / "data.txt"),
                 "again": str(tmp_path / "one" / "data.txt"), "folder": str(tmp_path / "two")}
    pyfunc.save_model(tmp_path / "m", python_model=code, artifacts=artifacts)
    saved = yaml.safe_load(open(tmp_path / "m" / "MLmodel"))["flavors"]["python_function"]["artifacts"]
    assert {k: v["path"] for k, v in saved.items()} == {
        "a": "artifacts/0/data.txt", "again": "artifacts/0/data.txt", "b": "artifacts/1/data.txt",
        "folder": "artifacts/two"}
    model = pyfunc.load_model(str(tmp_path / "m"))
    assert model.predict(["a", "b", "again"]) == ["one", "two", "one"]
    assert open(os.path.join(model.unwrap_python_model().folder, "data.txt")).read() == "two"


def test_a_model_file_may_load_another_model_from_code_while_it_runs(tmp_path, write_model_file):
    inner = write_model_file("import mltrail\nmltrail.models.set_model(lambda df: df + 1)\n", "inner.py")
    pyfunc.save_model(tmp_path / "inner", python_model=inner, pip_requirements=["pandas"])
    outer = write_model_file(f"""
        import mltrail as mlflow

        mlflow.models.set_model(lambda df: INNER.predict(df) * 10)  # set before the nested load runs
        INNER = mlflow.pyfunc.load_model({str(tmp_path / "inner")!r})
    """, "outer.py")
    pyfunc.save_model(tmp_path / "outer", python_model=outer, pip_requirements=["pandas"])
    model = pyfunc.load_model(str(tmp_path / "outer"))
    assert model.predict(pd.DataFrame({"x": [1, 2]}))["x"].tolist() == [20, 30]
