"""What autolog can learn about a `fit` call without touching the data: params, shapes, examples.

Everything here reads metadata only (array shapes, `tf.data` cardinality and element specs, a
`PyDataset`'s length and first batch); a generator is never advanced. Functions return plain
dicts ready for `log_params`; TensorFlow and Keras load only when a value needs them.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidParameterValue

# fit() arguments logged as params, as MLflow logs them: the value given (or fit's default), as text;
# x, y, callbacks, validation_data and verbose are data or plumbing and are not logged (MLflow logs
# `sample_weight` as text, which numpy shortens for long arrays, and so do we).
FIT_PARAM_NAMES = ("batch_size", "epochs", "steps_per_epoch", "validation_steps", "validation_split", "shuffle",
                   "initial_epoch", "class_weight", "sample_weight", "validation_batch_size", "validation_freq")

# Rows taken from the training data for a signature or an input example.
EXAMPLE_ROWS = 5


def bind_fit_args(original: Callable[..., Any], model: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """fit()'s arguments by name, defaults filled in (without `self`)."""
    bound = inspect.signature(original).bind(model, *args, **kwargs)
    bound.apply_defaults()
    out = dict(bound.arguments)
    out.pop("self", None)
    out.update(out.pop("kwargs", None) or {})
    return out


# ---------------------------------------------------------------------- data kinds
def _is_tf_dataset(x: Any) -> bool:
    mod = type(x).__module__
    if not mod.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


def _is_py_dataset(x: Any) -> bool:
    try:
        from keras.utils import PyDataset
    except ImportError:  # pragma: no cover - keras is there whenever fit is
        return False
    return isinstance(x, PyDataset)


def _has_shape(x: Any) -> bool:
    shape = getattr(x, "shape", None)
    return shape is not None and not isinstance(x, type) and hasattr(shape, "__len__")


def _shape(x: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in x.shape)


def _is_array_struct(x: Any) -> bool:
    """An array, or a dict/list/tuple of arrays (a multi-input model's x)."""
    if _has_shape(x):
        return True
    if isinstance(x, dict) and x:
        return all(_has_shape(v) for v in x.values())
    if isinstance(x, list | tuple) and x:
        return all(_has_shape(v) for v in x)
    return False


def _shape_text(x: Any) -> str:
    if _has_shape(x):
        return str(_shape(x))
    if isinstance(x, dict):
        return str({str(k): _shape(v) for k, v in x.items()})
    return str([_shape(v) for v in x])


def _first_dim(x: Any) -> int | None:
    if _has_shape(x):
        shape = _shape(x)
        return shape[0] if shape else None
    first = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return _first_dim(first)


def _tf_batch_size(ds: Any) -> int | None:
    """The batch size of a batched `tf.data` pipeline (looking through map/prefetch/cache/...)."""
    seen = 0
    while ds is not None and seen < 50:
        size = getattr(ds, "_batch_size", None)
        if size is not None:
            try:
                return int(size)
            except (TypeError, ValueError):
                return None
        ds = getattr(ds, "_input_dataset", None)
        seen += 1
    return None


def unpack_validation(validation_data: Any) -> tuple[Any, Any]:
    """(x, y) of fit's `validation_data` (a tuple (x, y[, sample_weight]) or a dataset)."""
    if isinstance(validation_data, tuple | list):
        if len(validation_data) == 1:
            return validation_data[0], None
        if len(validation_data) in (2, 3):
            return validation_data[0], validation_data[1]
    return validation_data, None


def split_sizes(n: int, validation_split: float) -> tuple[int, int]:
    """(train, validation) sample counts Keras uses for `validation_split` (it splits at floor)."""
    train = int(math.floor(n * (1.0 - validation_split)))
    return train, n - train


# ---------------------------------------------------------------------- params
def describe_data(prefix: str, x: Any, y: Any = None, samples: int | None = None) -> dict[str, Any]:
    """Shape and size params for one side of the data (`train` or `validation`)."""
    out: dict[str, Any] = {}
    if x is None:
        return out
    if _is_array_struct(x):
        n = _first_dim(x)
        out[f"{prefix}_samples"] = samples if samples is not None else n
        out[f"{prefix}_shape"] = _shape_text(x) if samples is None else _replace_first_dim(x, samples)
        if y is not None and _is_array_struct(y):
            out[f"{prefix}_target_shape"] = _shape_text(y) if samples is None else _replace_first_dim(y, samples)
    elif _is_tf_dataset(x):
        card = int(x.cardinality().numpy())
        if card >= 0:
            out[f"{prefix}_batches"] = card
        out[f"{prefix}_element_spec"] = str(x.element_spec)
    elif _is_py_dataset(x):
        try:
            out[f"{prefix}_batches"] = len(x)
        except TypeError:
            pass
        first = x[0]
        bx = first[0] if isinstance(first, tuple) else first
        if _is_array_struct(bx):
            out[f"{prefix}_batch_shape"] = _shape_text(bx)
    return out


def _replace_first_dim(x: Any, n: int) -> str:
    """The shape text of `x` with its sample count replaced by `n` (the `validation_split` part)."""
    def one(shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (n, *shape[1:]) if shape else shape

    if _has_shape(x):
        return str(one(_shape(x)))
    if isinstance(x, dict):
        return str({str(k): one(_shape(v)) for k, v in x.items()})
    return str([one(_shape(v)) for v in x])


def batch_size_of(fit_args: dict[str, Any]) -> int | None:
    """The batch size as MLflow logs it: the argument, else a batched dataset's or a PyDataset's first
    batch's (None for arrays given without one: fit's default applies)."""
    if fit_args.get("batch_size") is not None:
        return int(fit_args["batch_size"])
    x: Any = fit_args.get("x")
    if _is_tf_dataset(x):
        return _tf_batch_size(x)
    if _is_py_dataset(x):
        first = x[0]
        bx = first[0] if isinstance(first, tuple) else first
        return _first_dim(bx) if _is_array_struct(bx) else None
    return None


def fit_params(fit_args: dict[str, Any]) -> dict[str, Any]:
    """fit()'s settings as MLflow logs them (as given: `steps_per_epoch=None` stays None), plus the
    data's sizes and shapes (`train_samples`, `train_shape`, ..., mltrail's own)."""
    params = {k: fit_args.get(k) for k in FIT_PARAM_NAMES if k in fit_args}
    try:
        params["batch_size"] = batch_size_of(fit_args)
    except Exception:  # noqa: BLE001 - an odd dataset: keep the argument as given
        pass
    x, y = fit_args.get("x"), fit_args.get("y")
    split = fit_args.get("validation_split") or 0.0
    val = fit_args.get("validation_data")
    if split and val is None and _is_array_struct(x):
        n_train, n_val = split_sizes(_first_dim(x) or 0, split)
        params.update(describe_data("train", x, y, samples=n_train))
        params.update(describe_data("validation", x, y, samples=n_val))
    else:
        params.update(describe_data("train", x, y))
        vx, vy = unpack_validation(val) if val is not None else (None, None)
        params.update(describe_data("validation", vx, vy))
    return params


def optimizer_params(optimizer: Any) -> dict[str, Any]:
    """The optimizer's config (name, learning_rate, ...); the callback prefixes the keys (`opt_`, `optimizer_`)."""
    if optimizer is None or not hasattr(optimizer, "get_config"):
        return {}
    return dict(optimizer.get_config())


def param_counts(model: Any) -> dict[str, int]:
    """total_params, trainable_params and non_trainable_params, as `model.summary()` counts them."""
    def count(weights: Any) -> int:
        return int(sum(math.prod(int(d) for d in w.shape) for w in weights))

    trainable = count(model.trainable_weights)
    non_trainable = count(model.non_trainable_weights)
    return {"total_params": trainable + non_trainable, "trainable_params": trainable,
            "non_trainable_params": non_trainable}


def summary_text(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    return "\n".join(lines)


def model_config(model: Any) -> Any:
    """The model's layer configuration as JSON-ready data (Keras's own serialization)."""
    import keras

    return json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str))


# ---------------------------------------------------------------------- examples and datasets
def to_numpy(x: Any) -> Any:
    import numpy as np

    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_numpy(v) for v in x]
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def _head(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: _head(v, n) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_head(v, n) for v in x]
    return x[:n]


def _name_inputs(x: Any, model: Any) -> Any:
    """A list of inputs becomes a dict keyed by the model's input names, so a signature names them."""
    if not isinstance(x, list):
        return x
    names = [getattr(t, "name", None) for t in (getattr(model, "inputs", None) or [])]
    if len(names) == len(x) and all(names) and len(set(names)) == len(names):
        return dict(zip(names, x, strict=True))
    return x


def input_slice(x: Any, model: Any, n: int = EXAMPLE_ROWS) -> Any:
    """A few rows of the training inputs, as numpy; None when they cannot be read without consuming."""
    if _is_array_struct(x):
        return _name_inputs(to_numpy(_head(x, n)), model)
    if _is_tf_dataset(x):
        element = next(iter(x.take(1)))
        bx = element[0] if isinstance(element, tuple) else element
        return _name_inputs(to_numpy(_head(bx, n)), model)
    if _is_py_dataset(x):
        first = x[0]
        bx = first[0] if isinstance(first, tuple) else first
        return _name_inputs(to_numpy(_head(bx, n)), model)
    return None


def dataset_inputs(fit_args: dict[str, Any]) -> list[tuple[Any, str]]:
    """(mltrail.data Dataset, context) for the training ("train") and validation ("eval") data."""
    x, y = fit_args.get("x"), fit_args.get("y")
    split = fit_args.get("validation_split") or 0.0
    val = fit_args.get("validation_data")
    out = []
    if split and val is None and _is_array_struct(x) and not isinstance(x, list | tuple):
        n_train, _ = split_sizes(_first_dim(x) or 0, split)
        tx, ty = _head(x, n_train), (_head(y, n_train) if y is not None else None)
        vx, vy = _tail(x, n_train), (_tail(y, n_train) if y is not None else None)
        out.append((_dataset(tx, ty), "train"))
        out.append((_dataset(vx, vy), "eval"))
    else:
        out.append((_dataset(x, y), "train"))
        if val is not None:
            vx, vy = unpack_validation(val)
            out.append((_dataset(vx, vy), "eval"))
    return [(d, c) for d, c in out if d is not None]


def _tail(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: v[n:] for k, v in x.items()}
    return x[n:]


def _dataset(x: Any, y: Any) -> Any:
    """An mltrail.data Dataset for numpy arrays (or dicts of them), tensors and tf.data; else None."""
    import numpy as np

    from mltrail import data

    def is_np(v: Any) -> bool:
        return isinstance(v, np.ndarray) or (isinstance(v, dict) and bool(v) and all(
            isinstance(a, np.ndarray) for a in v.values()))

    if is_np(x) and (y is None or is_np(y)):
        return data.from_numpy(features=x, targets=y)
    if _is_tf_dataset(x):
        return data.from_tensorflow(features=x)
    mod = type(x).__module__
    if mod.startswith("tensorflow") and (y is None or type(y).__module__.startswith("tensorflow")):
        return data.from_tensorflow(features=x, targets=y)
    return None


# ------------------------------------------------------------------ argument checks
# (here, not in callback.py: autolog() refuses bad arguments without loading Keras)
def check_metric_settings(log_every_epoch: bool, log_every_n_steps: int | None, nothing_logged: str) -> None:
    """Refuse a `log_every_n_steps` that is not a positive integer, and settings that log no metrics.

    `nothing_logged` starts the message for the second case (it names the caller).
    """
    if log_every_n_steps is not None and (isinstance(log_every_n_steps, bool) or not isinstance(
            log_every_n_steps, int) or log_every_n_steps < 1):
        raise InvalidParameterValue(
            f"Invalid log_every_n_steps: received {log_every_n_steps!r}; expected a positive integer or None.")
    if not log_every_epoch and log_every_n_steps is None:
        raise InvalidParameterValue(
            f"{nothing_logged}: received log_every_epoch=False and log_every_n_steps=None; set "
            "log_every_epoch=True or give log_every_n_steps.")


def check_checkpoint_settings(mode: str, save_freq: str | int, names: tuple[str, str]) -> None:
    """Refuse a checkpoint mode other than "min"/"max" and a save_freq other than "epoch" or a step count.

    `names` are what the messages call the mode and save_freq (the caller's argument names).
    """
    mode_name, freq_name = names
    if mode not in ("min", "max"):
        raise InvalidParameterValue(f"Invalid {mode_name} {mode!r}: expected 'min' or 'max'.")
    if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
        raise InvalidParameterValue(
            f"Invalid {freq_name} {save_freq!r}: expected 'epoch' or a positive number of steps.")
