"""MLflow's documented custom-pyfunc examples with `import mltrail as mlflow`, and a model from code saved by
mltrail loaded by the real MLflow 3.17.2 (its own venv, when present)."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

# MLflow's "AddN" example (docs: Custom Python Models), with only the import changed
ADD_N_EXAMPLE = """
import mltrail as mlflow


# Define the model class
class AddN(mlflow.pyfunc.PythonModel):
    def __init__(self, n):
        self.n = n

    def predict(self, context, model_input, params=None):
        return model_input.apply(lambda column: column + self.n)


# Construct and save the model
model_path = "add_n_model"
add5_model = AddN(n=5)
mlflow.pyfunc.save_model(path=model_path, python_model=add5_model)

# Load the model in `python_function` format
loaded_model = mlflow.pyfunc.load_model(model_path{load_kwargs})

# Evaluate the model
import pandas as pd

model_input = pd.DataFrame([range(10)])
model_output = loaded_model.predict(model_input)
assert model_output.equals(pd.DataFrame([range(5, 15)]))
"""

# MLflow's models-from-code form of the same model (docs: Models From Code)
ADD_N_CODE_FILE = """
import mltrail as mlflow
from mltrail.models import set_model


class AddN(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input.apply(lambda column: column + 5)


set_model(AddN())
"""

ADD_N_CODE_LOGGING = """
import mltrail as mlflow
import pandas as pd

with mlflow.start_run():
    model_info = mlflow.pyfunc.log_model(name="model", python_model="add_n.py")

loaded_model = mlflow.pyfunc.load_model(model_info.model_uri)
assert loaded_model.predict(pd.DataFrame([range(10)])).equals(pd.DataFrame([range(5, 15)]))
"""


def test_add_n_example_runs_once_pickle_loading_is_opted_into(tmp_path, monkeypatch):
    from mltrail.errors import InvalidParameterValue

    # unchanged, the example stops where it would unpickle, saying how to opt in
    with pytest.raises(InvalidParameterValue, match="allow_pickle=True.*MLTRAIL_ALLOW_PICKLE=true"):
        exec(ADD_N_EXAMPLE.format(load_kwargs=""), {"__name__": "__main__"})
    # with both opt-ins (run in a fresh directory: the example saves to a fixed path)
    monkeypatch.setenv("MLTRAIL_ALLOW_PICKLE", "true")
    (tmp_path / "again").mkdir()
    monkeypatch.chdir(tmp_path / "again")
    exec(ADD_N_EXAMPLE.format(load_kwargs=", allow_pickle=True"), {"__name__": "__main__"})


def test_add_n_from_code_example_runs_unchanged(tracking, tmp_path):
    (tmp_path / "add_n.py").write_text(ADD_N_CODE_FILE)
    exec(ADD_N_CODE_LOGGING, {"__name__": "__main__"})




def test_mlflow_loads_a_model_from_code_saved_by_mltrail(tmp_path, mlflow_python):
    import pandas as pd

    import mltrail.pyfunc as pyfunc

    code = tmp_path / "model.py"
    code.write_text(textwrap.dedent("""
        try:
            import mlflow
        except ImportError:
            import mltrail as mlflow


        class AddN(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                self.n = context.model_config["n"]

            def predict(self, context, model_input, params=None):
                return model_input + self.n


        mlflow.models.set_model(AddN())
    """))
    pyfunc.save_model(tmp_path / "m", python_model=str(code), model_config={"n": 7},
                      input_example=pd.DataFrame({"a": [1.0]}), pip_requirements=["pandas"])
    script = textwrap.dedent(f"""
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({str(tmp_path / "m")!r})
        print(model.predict(pd.DataFrame({{"a": [1.0, 2.0]}}))["a"].tolist())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLTRAIL_"))}
    out = subprocess.run([str(mlflow_python), "-c", script], capture_output=True, text=True, timeout=240, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[8.0, 9.0]"
