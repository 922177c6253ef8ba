"""The README's Python examples, run as a new user would: in a fresh folder, on the embedded default.

The Keras and registry examples are fragments about a `model`, `x` and `y` of the reader's own:
they run after a prelude that makes a tiny model. Each example runs in its own process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PRELUDE = """\
import numpy as np, keras
x = np.random.default_rng(0).random((64, 8)).astype("float32"); y = (x.sum(1) > 4).astype("int32")
model = keras.Sequential([keras.Input([8]), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _run(code: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_readme_has_the_examples_these_tests_run():
    blocks = _python_blocks()
    assert len(blocks) == 6
    assert "mlflow.search_runs" in blocks[0] and "tensorflow.autolog" in blocks[1]
    assert "set_model" in blocks[2] and "pyfunc.log_model" in blocks[3] and "mlflow.evaluate" in blocks[4]
    assert "register_model" in blocks[5]


def test_the_custom_model_example(tmp_path):
    blocks = _python_blocks()
    (tmp_path / "add_n.py").write_text(blocks[2])  # the model file the example logs
    out = _run(blocks[3], tmp_path)
    assert out.split()[-4:] == ["0", "6.0", "1", "7.0"]  # the DataFrame printed: a + 5


def test_the_evaluation_example(tmp_path):
    out = _run(_python_blocks()[4], tmp_path)
    accuracy, uri = out.split()
    assert float(accuracy) == pytest.approx(45 / 50) and uri.endswith("confusion_matrix.png")


def test_the_tracking_example(tmp_path):
    out = _run(_python_blocks()[0] + "\nprint(len(best), len(runs), len(history))\n", tmp_path)
    assert out.split() == ["1", "2", "10"]  # the parent matches the filter; both runs; ten losses
    assert (tmp_path / "mltrail" / "mltrail.db").exists()


@pytest.mark.tf
def test_the_keras_and_registry_examples(tmp_path):
    blocks = _python_blocks()
    out = _run(PRELUDE + blocks[1] + blocks[5] + "\nprint(champion.predict(x[:2]).shape, mv.version)\n", tmp_path)
    assert out.split()[-3:] == ["(2,", "2)", "1"]
