"""`mltrail demo`: train a small Keras model with autologging, then show what was logged and where.

The model and data are the "Autologging" example's (a conv net on random 28x28x3 images); the run
goes to the tracking URI in force (by default the embedded store, `./mltrail/`).
"""

from __future__ import annotations

import tempfile
from typing import Any

import click


def _artifact_files(client: Any, run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for f in client.list_artifacts(run_id, path):
        out.extend(_artifact_files(client, run_id, f.path) if f.is_dir else [f.path])
    return out


def _summarize_dirs(files: list[str]) -> list[str]:
    """Artifact paths, with directories of many files (TensorBoard's) shown once with a count."""
    shown: dict[str, int] = {}
    for f in files:
        top = f.split("/", 1)[0]
        key = f"{top}/" if "/" in f and top in ("tensorboard_logs",) else f
        shown[key] = shown.get(key, 0) + 1
    return [f"{k} ({n} files)" if k.endswith("/") else k for k, n in sorted(shown.items())]


def _ui_command(uri: str) -> str:
    from mltrail.tracking_uri import is_tracking_uri_set

    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    if not is_tracking_uri_set():
        return "mltrail ui    # then open http://127.0.0.1:5000"
    return f"mltrail ui --backend-store-uri {uri}    # then open http://127.0.0.1:5000"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Training epochs.")
@click.option("--experiment", default="mltrail-demo", show_default=True, help="Experiment to log the run in.")
def demo(epochs: int, experiment: str) -> None:
    """Train a small Keras model with autologging and print what was logged."""
    import numpy as np

    click.echo("Loading TensorFlow...", err=True)
    import mltrail
    import mltrail.tensorflow
    from tensorflow import keras

    mltrail.set_experiment(experiment)
    mltrail.tensorflow.autolog(log_input_examples=True, silent=True)
    try:
        rng = np.random.default_rng(0)
        data = rng.uniform(size=[64, 28, 28, 3]).astype("float32")
        label = rng.integers(2, size=64)
        model = keras.Sequential([
            keras.Input([28, 28, 3]),
            keras.layers.Conv2D(8, 2),
            keras.layers.MaxPool2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
            keras.layers.Softmax(),
        ])
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), optimizer=keras.optimizers.Adam(0.001),
                      metrics=[keras.metrics.SparseCategoricalAccuracy()])
        click.echo(f"Training for {epochs} epoch(s) with mltrail.tensorflow.autolog()...", err=True)
        with mltrail.start_run(run_name="demo") as run:
            model.fit(data, label, batch_size=8, epochs=epochs, validation_split=0.25, verbose=0)
    finally:
        mltrail.tensorflow.autolog(disable=True)
    _report(run.info.run_id)


def _report(run_id: str) -> None:
    import mltrail

    client = mltrail.MlflowClient()
    run = client.get_run(run_id)
    uri = mltrail.get_tracking_uri()
    echo = click.echo
    echo("")
    echo(f"Run {run_id} ({run.info.run_name}) in experiment {run.info.experiment_id}, status {run.info.status}")
    echo(f"Tracking URI: {uri}")
    echo("")
    echo(f"Params ({len(run.data.params)}):")
    for k, v in sorted(run.data.params.items()):
        echo(f"  {k} = {v if len(v) <= 70 else v[:67] + '...'}")
    echo("")
    echo("Metrics, per epoch (step: value):")
    for k in sorted(run.data.metrics):
        history = sorted(client.get_metric_history(run_id, k), key=lambda m: (m.step, m.timestamp))
        points = ", ".join(f"{m.step}: {m.value:.4g}" for m in history[:10])
        echo(f"  {k}  {points}{', ...' if len(history) > 10 else ''}")
    echo("")
    echo("Artifacts:")
    files = _artifact_files(client, run_id)
    for line in _summarize_dirs(files):
        echo(f"  {line}")
    if "model_summary.txt" in files:
        echo("")
        echo("model_summary.txt:")
        local = client.download_artifacts(run_id, "model_summary.txt", tempfile.mkdtemp(prefix="mltrail-demo-"))
        with open(local, encoding="utf-8") as f:
            for line in f.read().splitlines():
                echo(f"  {line}")
    models = [m for m in mltrail.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
              if m.source_run_id == run_id]
    echo("")
    model_uri = None
    for m in models:
        model_uri = m.model_uri
        echo(f"Logged model: {m.model_uri} (name {m.name!r}, status {m.status})")
        try:
            from mltrail.models import Model

            signature = Model.load(m.model_uri).signature
            if signature is not None:
                echo(f"  signature inputs:  {signature.inputs}")
                echo(f"  signature outputs: {signature.outputs}")
        except Exception as e:  # noqa: BLE001 - the listing above is still useful
            echo(f"  (could not read its MLmodel: {e})")
    echo("")
    echo("See it:")
    echo(f"  {_ui_command(uri)}")
    echo(f"  mltrail runs describe --run-id {run_id}")
    if model_uri is not None:
        echo("Load the model:")
        echo(f"  python -c \"import mltrail; m = mltrail.tensorflow.load_model('{model_uri}'); m.summary()\"")
        echo(f"  mltrail models serve -m {model_uri} -p 5001")
