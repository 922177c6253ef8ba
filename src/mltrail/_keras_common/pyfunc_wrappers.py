"""The pyfunc side of Keras and TensorFlow models: predict through one compiled function, not `model.predict`.

A Keras model is called as `model(x, training=False)` inside a `tf.function` whose input signature
comes from the model's symbolic inputs (batch dimension None), so batch sizes never cause a
retrace; subclassed models without symbolic inputs use the MLmodel signature's shapes, else
`reduce_retracing`. A SavedModel is called through its `serve` endpoint (or `serving_default`).
Outputs come back as numpy arrays, or a dict of arrays for models with several outputs.
"""

from __future__ import annotations

import threading
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.models.signature import is_dataframe, to_numpy


def _as_numpy(value: Any) -> Any:
    import numpy as np

    value = to_numpy(value)
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _outputs_to_numpy(out: Any, names: list[str] | None) -> Any:
    """A tensor becomes an array; several outputs become {name: array} (output_0, ... when unnamed)."""
    if isinstance(out, dict):
        if len(out) == 1:
            return _as_numpy(next(iter(out.values())))
        return {str(k): _as_numpy(v) for k, v in out.items()}
    if isinstance(out, list | tuple):
        if len(out) == 1:
            return _as_numpy(out[0])
        keys = names if names and len(names) == len(out) else [f"output_{i}" for i in range(len(out))]
        return {k: _as_numpy(v) for k, v in zip(keys, out, strict=True)}
    return _as_numpy(out)


def _cast_to(arr: Any, dtype: Any) -> Any:
    """Give the compiled function the dtype it was traced for (the signature already refused unsafe data)."""
    import numpy as np

    arr = _as_numpy(arr)
    target = np.dtype(dtype)
    if arr.dtype == target:
        return arr
    if arr.dtype.kind in "biuf" and target.kind in "biuf":
        return arr.astype(target)
    return arr


def _arrange(data: Any, structure: Any, what: str) -> Any:
    """Fit prepared input (array, list, dict by name, DataFrame) to the structure of TensorSpecs a function takes."""
    import numpy as np

    if is_dataframe(data):
        if isinstance(structure, dict | list) and len(structure) > 1:
            data = {str(c): np.stack(data[c].to_list()) if data[c].dtype == object else data[c].to_numpy()
                    for c in data.columns}
        else:
            data = data.to_numpy()
    if isinstance(structure, dict):
        if not isinstance(data, dict):
            if len(structure) == 1:
                return {k: _cast_to(data, s.dtype.as_numpy_dtype) for k, s in structure.items()}
            raise InvalidParameterValue(
                f"The {what} takes inputs {sorted(structure)}; received a single {type(data).__name__}. "
                "Pass a dict {name: array}.")
        missing = [k for k in structure if k not in data]
        if missing:
            if len(data) == len(structure):  # the signature named them differently: go by position
                data = dict(zip(structure, data.values(), strict=True))
            else:
                raise InvalidParameterValue(
                    f"Missing input(s) {missing}: the {what} takes {list(structure)}, received {list(data)}.")
        return {k: _cast_to(data[k], s.dtype.as_numpy_dtype) for k, s in structure.items()}
    if isinstance(structure, list | tuple):
        names = [getattr(s, "name", None) for s in structure]
        if isinstance(data, dict):
            if all(n in data for n in names):
                values = [data[n] for n in names]
            elif len(data) == len(structure):
                values = list(data.values())
            else:
                missing = [n for n in names if n not in data]
                raise InvalidParameterValue(
                    f"Missing input(s) {missing}: the {what} takes inputs {names}, received {list(data)}.")
        elif isinstance(data, list | tuple) and len(data) == len(structure):
            values = list(data)
        elif len(structure) == 1:
            values = [data]
        else:
            raise InvalidParameterValue(
                f"The {what} takes {len(structure)} inputs {names}; received a single {type(data).__name__}. "
                "Pass a dict {name: array}.")
        return [_cast_to(v, s.dtype.as_numpy_dtype) for v, s in zip(values, structure, strict=True)]
    # a single TensorSpec
    if isinstance(data, dict):
        if len(data) != 1:
            raise InvalidParameterValue(f"The {what} takes one input; received {len(data)} ({list(data)}).")
        data = next(iter(data.values()))
    elif isinstance(data, list | tuple) and data and all(hasattr(v, "shape") for v in data) and len(data) == 1:
        data = data[0]
    return _cast_to(data, structure.dtype.as_numpy_dtype)


def keras_input_structure(model: Any, schema: Any) -> Any:
    """TensorSpecs shaped like the model's inputs (single, list or dict); None when unknown."""
    import tensorflow as tf

    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        inputs = getattr(model, "inputs", None)
        struct = inputs[0] if inputs is not None and len(inputs) == 1 else inputs
    if struct is not None:
        return tf.nest.map_structure(
            lambda t: tf.TensorSpec([None, *t.shape[1:]], tf.as_dtype(t.dtype), name=getattr(t, "name", None)),
            struct)
    if schema is not None and schema.is_tensor_spec():
        specs = [tf.TensorSpec([None if d == -1 else d for d in s.shape], tf.as_dtype(s.type), name=s.name)
                 for s in schema.inputs if s.type.kind in "biuf"]
        if len(specs) != len(schema.inputs):
            return None
        if len(specs) == 1:
            return specs[0]
        return {s.name: spec for s, spec in zip(schema.inputs, specs, strict=True)} if schema.has_input_names() \
            else specs
    return None


def _as_frame_like(data: Any, out: Any) -> Any:
    """A DataFrame (on the input's index) for DataFrame input and one 1-D or 2-D output, as MLflow returns."""
    if is_dataframe(data) and not isinstance(out, dict) and out.ndim <= 2:
        import pandas as pd

        return pd.DataFrame(out, index=data.index)
    return out


class KerasModelWrapper:
    """pyfunc implementation for a Keras model."""

    def __init__(self, model: Any, conf: dict[str, Any], schema: Any = None) -> None:
        self._model = model
        self._conf = conf
        self._schema = schema
        self._fn: Any = None
        self._structure: Any = None
        self._lock = threading.Lock()
        self._output_names = list(conf.get("output_names") or getattr(model, "output_names", None) or [])

    def get_raw_model(self) -> Any:
        return self._model

    def _compiled(self) -> Any:
        if self._fn is None:
            with self._lock:
                if self._fn is None:
                    import tensorflow as tf

                    model = self._model
                    structure = keras_input_structure(model, self._schema)

                    def call(x: Any) -> Any:
                        return model(x, training=False)

                    if structure is not None:
                        fn = tf.function(call, input_signature=[structure])
                    else:
                        fn = tf.function(call, reduce_retracing=True)
                    self._structure = structure
                    self._fn = fn
        return self._fn

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        fn = self._compiled()
        if self._structure is not None:
            x = _arrange(data, self._structure, "model")
        else:
            x = data.to_numpy() if is_dataframe(data) else data
        return _as_frame_like(data, _outputs_to_numpy(fn(x), self._output_names))


class SavedModelWrapper:
    """pyfunc implementation for a TensorFlow SavedModel (the 'tf' format, or a tf.Module)."""

    def __init__(self, loaded: Any, conf: dict[str, Any]) -> None:
        self._loaded = loaded
        self._output_names = list(conf.get("output_names") or [])
        serve = getattr(loaded, "serve", None)
        concrete = list(getattr(serve, "concrete_functions", None) or [])
        if serve is not None and concrete:
            args, _ = concrete[0].structured_input_signature
            # MLflow exports `model.call`, whose `training` and `mask` arguments are traced as None
            args = [a for a in args if a is not None]
            self._call = serve
            self._structure = args[0] if len(args) == 1 else list(args)
            self._by_keyword = False
        elif "serving_default" in getattr(loaded, "signatures", {}):
            sig = loaded.signatures["serving_default"]
            self._call = sig
            self._structure = dict(sig.structured_input_signature[1])
            self._by_keyword = True
        else:
            raise InvalidParameterValue(
                "The SavedModel has neither a 'serve' endpoint nor a 'serving_default' signature, so it cannot be "
                "called as a pyfunc model.")

    def get_raw_model(self) -> Any:
        return self._loaded

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        x = _arrange(data, self._structure, "SavedModel")
        out = self._call(**x) if self._by_keyword else self._call(x)
        if self._by_keyword and isinstance(out, dict) and len(out) > 1:
            # serving_default names outputs output_0, output_1...: use the model's own names when known
            keys = sorted(out, key=lambda k: (len(k), k))
            if len(self._output_names) == len(keys) and all(k.startswith("output_") for k in keys):
                return {n: _as_numpy(out[k]) for n, k in zip(self._output_names, keys, strict=True)}
        return _as_frame_like(data, _outputs_to_numpy(out, self._output_names))


def wrap(model: Any, conf: dict[str, Any], schema: Any = None) -> Any:
    """The pyfunc implementation for a loaded model."""
    import keras

    if isinstance(model, keras.Model):
        return KerasModelWrapper(model, conf, schema)
    return SavedModelWrapper(model, conf)


def model_outputs(model: Any, example: Any) -> Any:
    """Run a just-saved model on a (normalized) input example, to infer the output schema."""
    import keras

    if isinstance(model, keras.Model):
        return KerasModelWrapper(model, {}).predict(example)
    return SavedModelWrapper(model, {}).predict(example)
