"""Custom Python models: `PythonModel`, `PythonModelContext`, and the wrapper that gives them pyfunc's `predict`.

As in MLflow 3, `predict` may take the context or not: `predict(self, context, model_input,
params=None)` and `predict(self, model_input, params=None)` both work (a `context` parameter, or
exactly two parameters besides `self` and `params`, means the context is passed). A `predict`
annotated with `list[str]` gets a DataFrame's first string column as a list, and one annotated
with a list of dicts gets the DataFrame's records, as MLflow's type-hint conversion does.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Iterator
from typing import Any

from mltrail.errors import InvalidParameterValue

__all__ = ["FunctionPythonModel", "PythonModel", "PythonModelContext", "PythonModelWrapper", "TypeHints",
           "takes_context"]

_log = logging.getLogger(__name__)


class PythonModelContext:
    """What a `PythonModel` gets at load time: its artifacts (name -> local path) and its model config."""

    def __init__(self, artifacts: dict[str, str] | None, model_config: dict[str, Any] | None) -> None:
        self._artifacts = dict(artifacts or {})
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        """`{name: absolute local path}` for each artifact given to `save_model(artifacts=...)`."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The `model_config` saved with the model, with load-time overrides applied."""
        return self._model_config

    def __repr__(self) -> str:
        return f"PythonModelContext(artifacts={sorted(self._artifacts)}, model_config={self._model_config!r})"


class TypeHints:
    """The input and output annotations of a `predict` method (the shape of MLflow's `_TypeHints`)."""

    def __init__(self, input: Any = None, output: Any = None) -> None:  # noqa: A002 (MLflow's attribute names)
        self.input = input
        self.output = output

    def __repr__(self) -> str:
        return f"TypeHints(input={self.input!r}, output={self.output!r})"


def takes_context(func: Callable[..., Any]) -> bool:
    """Whether `predict`/`predict_stream` takes the context first (MLflow's rule, see the module doc)."""
    parameters = inspect.signature(func).parameters
    return "context" in parameters or len([p for p in parameters if p not in ("self", "params")]) == 2


def _input_hint(func: Callable[..., Any]) -> Any:
    """The annotation of the model-input parameter of `func`; None when absent or unresolvable."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # forward references to names the model file does not define: no conversion
        return None
    names = [p for p in inspect.signature(func).parameters if p not in ("self", "params")]
    if not names:
        return None
    return hints.get(names[-1])


class PythonModel:
    """Base class of custom models: override `predict` (and `load_context`, `predict_stream` when needed)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load what `predict` needs from `context.artifacts` and `context.model_config`; called once at load."""

    def predict(self, context: PythonModelContext | None, model_input: Any,
                params: dict[str, Any] | None = None) -> Any:
        """The model's output for `model_input` (a DataFrame, array, list, dict... as the signature gives it)."""
        raise NotImplementedError(f"{type(self).__name__} must override PythonModel.predict.")

    def predict_stream(self, context: PythonModelContext | None, model_input: Any,
                       params: dict[str, Any] | None = None) -> Iterator[Any]:
        """An iterator over the model's output for `model_input`; optional."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_stream.")

    @property
    def predict_type_hints(self) -> TypeHints:
        """The annotations of this model's `predict` input and output."""
        predict = type(self).predict
        try:
            output = typing.get_type_hints(predict).get("return")
        except Exception:  # unresolvable forward references: no hints
            output = None
        return TypeHints(_input_hint(predict), output)


class FunctionPythonModel(PythonModel):
    """A plain function `f(model_input)` used as a model (MLflow accepts a callable as `python_model`)."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        return self.func(model_input)


def is_streamable(python_model: Any) -> bool:
    """Whether the model overrides `predict_stream` (MLflow's `streamable` default)."""
    own = getattr(type(python_model), "predict_stream", None)
    return own is not None and own is not PythonModel.predict_stream


def _first_string_column(df: Any) -> Any:
    if len(df) == 0:
        return None
    return next((col for col, value in df.iloc[0].items() if isinstance(value, str)), None)


def _is_list_of(hint: Any, item: Callable[[Any], bool]) -> bool:
    return typing.get_origin(hint) is list and len(typing.get_args(hint)) == 1 and item(typing.get_args(hint)[0])


def convert_input(model_input: Any, hint: Any) -> Any:
    """A DataFrame turned into what a `list[str]` or `list[dict]` annotation asks for; anything else unchanged."""
    from mltrail.models.signature import is_dataframe

    if hint is None or not is_dataframe(model_input):
        return model_input
    if _is_list_of(hint, lambda t: t is str):
        column = _first_string_column(model_input)
        if column is None:
            raise InvalidParameterValue(
                "Expected model input to contain at least one string column: predict is annotated "
                f"{hint}, and the DataFrame's columns are {list(model_input.columns)}.")
        return model_input[column].tolist()
    if _is_list_of(hint, lambda t: t is dict or typing.get_origin(t) is dict):
        return model_input.to_dict(orient="records")
    return model_input


class PythonModelWrapper:
    """The pyfunc implementation of a loaded `PythonModel`: calls its `predict` with the context when it takes one."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context

    def _call(self, method: Callable[..., Any], model_input: Any, params: dict[str, Any] | None) -> Any:
        parameters = inspect.signature(method).parameters
        kwargs: dict[str, Any] = {}
        if "params" in parameters:
            kwargs["params"] = params
        elif params:
            _log.warning("The underlying model does not support passing additional parameters to the predict "
                         "function. `params` %s will be ignored.", params)
        data = convert_input(model_input, _input_hint(method))
        if takes_context(method):
            return method(self.context, data, **kwargs)
        return method(data, **kwargs)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self._call(self.python_model.predict, model_input, params)

    def predict_stream(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self._call(self.python_model.predict_stream, model_input, params)
