"""Parallel Optuna tuning of a Keras model: N worker processes share one study, each trial a nested run.

The seed's Optuna example, scaled out. The study lives in Optuna's RDB storage (PostgreSQL), so every
worker process draws its trials from the same sampler state; the runs go to one tracking server. The
main process starts the parent run and hands its id to the workers, which open each trial's run with
MLflow's own `start_run(parent_run_id=...)`, so the same code runs against `mlflow` unchanged.

    python examples/optuna_parallel.py --workers 4 --trials 20 \\
        --storage postgresql://USER@HOST/optuna --tracking-uri http://HOST:5000

Use a database of its own for Optuna (`createdb optuna`): Optuna and the tracking server each keep an
Alembic version table, so they cannot share one database, but they can share the PostgreSQL server.
The trials are split between the workers up front (20 over 4 workers: 5 each), so the study ends with
exactly `--trials` trials, each in exactly one nested run, whatever order the workers finish in.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import optuna

import mltrail as mlflow

N_CLASSES = 10
IMAGE_SHAPE = (28, 28, 3)


@dataclass(frozen=True)
class Settings:
    """What every worker needs: where the study and the runs live, and how big the training is."""

    storage: str
    study_name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    samples: int
    epochs: int
    log_models: bool


def storage_url(url: str) -> str:
    """`postgresql://` means psycopg2 to SQLAlchemy; use psycopg 3 (the driver mltrail installs) when psycopg2 is absent."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None:
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_data(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images whose class a linear map decides: learnable in a few epochs. The same in every process."""
    rng = np.random.default_rng(seed)
    x = rng.random((samples + samples // 4, *IMAGE_SHAPE), dtype=np.float32)
    projection = rng.normal(size=(int(np.prod(IMAGE_SHAPE)), N_CLASSES)).astype(np.float32)
    y = np.argmax(x.reshape(len(x), -1) @ projection, axis=1)
    return x[:samples], y[:samples], x[samples:], y[samples:]


def create_model(trial: optuna.trial.BaseTrial) -> keras.Model:
    """The seed's model: its hyperparameters drawn from the trial (or read back from a finished one)."""
    learning_rate = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
    units = trial.suggest_int("units", 32, 512)
    dropout = trial.suggest_float("dropout", 0.1, 0.5)
    model = keras.Sequential([
        keras.layers.Input(shape=IMAGE_SHAPE),
        keras.layers.Flatten(),
        keras.layers.Dense(units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(N_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_objective(settings: Settings) -> Any:
    x_train, y_train, x_val, y_val = make_data(settings.samples)

    def objective(trial: optuna.Trial) -> float:
        # one nested run per trial, under the parent run the main process holds open
        with mlflow.start_run(experiment_id=settings.experiment_id, parent_run_id=settings.parent_run_id,
                              run_name=f"trial-{trial.number}",
                              tags={"optuna.study_name": settings.study_name,
                                    "optuna.trial_number": str(trial.number)}) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            model = create_model(trial)
            mlflow.log_params(trial.params)
            history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=settings.epochs,
                                verbose=0)
            val_accuracy = float(max(history.history["val_accuracy"]))
            mlflow.log_metric("val_accuracy", val_accuracy)
            if settings.log_models:
                mlflow.tensorflow.log_model(model, name="model")
            return val_accuracy

    return objective


def worker(settings: Settings, n_trials: int) -> None:
    """One worker process: join the study and run its share of the trials."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    study = optuna.create_study(storage=storage_url(settings.storage), study_name=settings.study_name,
                                direction="maximize", load_if_exists=True)
    study.optimize(make_objective(settings), n_trials=n_trials)


def shares(trials: int, workers: int) -> list[int]:
    """`trials` split as evenly as possible over `workers` (no zero shares)."""
    base, extra = divmod(trials, workers)
    return [n for n in (base + (1 if i < extra else 0) for i in range(workers)) if n > 0]


def run_workers(settings: Settings, trials: int, workers: int) -> None:
    # spawn, not fork: TensorFlow is not fork-safe once loaded
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=worker, args=(settings, n), name=f"optuna-worker-{i}")
             for i, n in enumerate(shares(trials, workers))]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = [f"{p.name} (exit code {p.exitcode})" for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} worker(s) failed: {', '.join(failed)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default: 4)")
    parser.add_argument("--trials", type=int, default=20, help="trials in all, split over the workers (default: 20)")
    parser.add_argument("--storage", required=True,
                        help="Optuna's storage URL, e.g. postgresql://USER@HOST/optuna (a database of its own)")
    parser.add_argument("--tracking-uri", required=True, help="the tracking server, e.g. http://HOST:5000")
    parser.add_argument("--experiment-name", default="optuna-parallel")
    parser.add_argument("--study-name", default=None, help="default: a new study named after the parent run")
    parser.add_argument("--samples", type=int, default=2048, help="training images (default: 2048)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per trial (default: 5)")
    parser.add_argument("--final-epochs", type=int, default=10,
                        help="epochs of the final model trained with the best parameters; 0 skips it (default: 10)")
    parser.add_argument("--no-log-models", dest="log_models", action="store_false",
                        help="do not log each trial's model (the final model is still logged)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.trials < 1:
        parser.error(f"--workers and --trials must be at least 1; received {args.workers} and {args.trials}")

    mlflow.set_tracking_uri(args.tracking_uri)
    experiment_id = mlflow.set_experiment(args.experiment_name).experiment_id
    with mlflow.start_run(run_name="hyperparameter_optimization") as parent:
        study_name = args.study_name or f"keras-tuning-{parent.info.run_id[:12]}-{uuid.uuid4().hex[:6]}"
        mlflow.log_params({"optimization_framework": "optuna", "n_trials": args.trials, "direction": "maximize",
                           "metric": "val_accuracy", "n_workers": args.workers, "study_name": study_name})
        # the study is created once here, so the workers only ever load it
        study = optuna.create_study(storage=storage_url(args.storage), study_name=study_name, direction="maximize",
                                    load_if_exists=True)
        settings = Settings(args.storage, study_name, args.tracking_uri, experiment_id, parent.info.run_id,
                            args.samples, args.epochs, args.log_models)
        run_workers(settings, args.trials, args.workers)

        best = study.best_trial  # read from the shared storage: every worker's trials are there
        mlflow.log_params({f"best_{k}": v for k, v in best.params.items()})
        mlflow.log_metric("best_val_accuracy", float(best.value))
        mlflow.set_tag("best_trial_run_id", str(best.user_attrs.get("mlflow_run_id", "")))
        if args.final_epochs > 0:
            x_train, y_train, _, _ = make_data(args.samples)
            final_model = create_model(optuna.trial.FixedTrial(best.params))
            final_model.fit(x_train, y_train, epochs=args.final_epochs, verbose=0)
            mlflow.tensorflow.log_model(final_model, name="best_model")
        print(f"study {study_name}: {len(study.trials)} trials, best val_accuracy {best.value:.4f} "
              f"(trial {best.number}); parent run {parent.info.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
