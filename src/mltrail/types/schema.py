"""Schemas that describe a model's inputs, outputs and parameters, in MLflow's JSON encoding.

`Schema` holds either column specs (`ColSpec`, for tabular data) or tensor specs (`TensorSpec`,
for arrays); `ParamSchema` holds inference parameters (`ParamSpec`). Every class round-trips
through `to_dict()`/`from_json()` exactly as MLflow writes them in an MLmodel file.
numpy is imported inside functions only, so `import mltrail.types` stays light.
"""

from __future__ import annotations

import datetime as _dt
import json
from enum import Enum
from typing import Any

from mltrail.errors import InvalidParameterValue

__all__ = ["ColSpec", "DataType", "ParamSchema", "ParamSpec", "Schema", "TensorSpec"]


class DataType(Enum):
    """The column and parameter types MLflow knows (same names and numbering)."""

    boolean = 1
    integer = 2
    long = 3
    float = 4
    double = 5
    string = 6
    binary = 7
    datetime = 8

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    def to_numpy(self) -> Any:
        """The numpy dtype that holds values of this type."""
        import numpy as np

        return np.dtype({
            "boolean": "bool", "integer": "int32", "long": "int64", "float": "float32", "double": "float64",
            "string": "object", "binary": "object", "datetime": "datetime64[ns]",
        }[self.name])

    def to_pandas(self) -> Any:
        """The pandas dtype for this type (numpy's, except object for strings and bytes)."""
        return self.to_numpy()

    def to_python(self) -> type:
        """The Python type of one value."""
        return {
            "boolean": bool, "integer": int, "long": int, "float": float, "double": float,
            "string": str, "binary": bytes, "datetime": _dt.datetime,
        }[self.name]

    @classmethod
    def from_name(cls, name: DataType | str) -> DataType:
        """Accept a DataType or its name ("double"); refuse anything else with the valid names."""
        if isinstance(name, DataType):
            return name
        try:
            return cls[str(name)]
        except KeyError:
            raise InvalidParameterValue(
                f"Unsupported data type {name!r}: expected one of {', '.join(t.name for t in cls)}."
            ) from None


class ColSpec:
    """One named (or unnamed) column of a tabular input or output."""

    def __init__(self, type: DataType | str, name: str | None = None, required: bool = True) -> None:
        self._type = DataType.from_name(type)
        self._name = name
        self._required = bool(required)

    @property
    def type(self) -> DataType:
        return self._type

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def required(self) -> bool:
        return self._required

    @property
    def optional(self) -> bool:
        """MLflow's older name: the column may be missing."""
        return not self._required

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self._type.name}
        if self._name is not None:
            d["name"] = self._name
        d["required"] = self._required
        return d

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ColSpec:
        if "type" not in kwargs:
            raise InvalidParameterValue(f"Invalid column spec {kwargs!r}: missing 'type'.")
        required = kwargs.get("required", not kwargs.get("optional", False))
        return cls(kwargs["type"], kwargs.get("name"), required)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColSpec) and (self._type, self._name, self._required) == (
            other._type, other._name, other._required)

    def __hash__(self) -> int:
        return hash((self._type, self._name, self._required))

    def __repr__(self) -> str:
        req = "" if self._required else " (optional)"
        return f"{self._name!r}: {self._type.name}{req}" if self._name is not None else f"{self._type.name}{req}"


def _clean_dtype(dtype: Any) -> Any:
    """A numpy dtype; strings become the flexible `str`/`bytes` types MLflow records ('str', 'bytes')."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind == "U":
        return np.dtype(str)
    if dtype.kind == "S":
        return np.dtype(bytes)
    return dtype


def dtype_name(dtype: Any) -> str:
    """The name MLflow writes for a tensor dtype: 'float32', 'int64', 'str', 'bytes', 'object'..."""
    kind = dtype.kind
    if kind == "U":
        return "str"
    if kind == "S":
        return "bytes"
    return str(dtype.name)


def _dtype_from_name(name: str) -> Any:
    import numpy as np

    if name in ("str", "str_", "unicode"):
        return np.dtype(str)
    if name in ("bytes", "bytes_"):
        return np.dtype(bytes)
    try:
        return np.dtype(name)
    except TypeError:
        raise InvalidParameterValue(f"Unsupported tensor dtype {name!r}: expected a numpy dtype name.") from None


class TensorSpec:
    """One tensor: a numpy dtype and a shape where -1 means "any size" (usually the batch)."""

    def __init__(self, type: Any, shape: tuple[int, ...] | list[int], name: str | None = None) -> None:
        import numpy as np

        if isinstance(type, str):
            type = _dtype_from_name(type)
        if not isinstance(type, np.dtype):
            try:
                type = np.dtype(type)
            except TypeError:
                raise InvalidParameterValue(
                    f"Invalid TensorSpec type {type!r}: expected a numpy dtype (e.g. np.dtype(np.float32))."
                ) from None
        if not isinstance(shape, tuple | list) or not all(isinstance(d, int | np.integer) for d in shape):
            raise InvalidParameterValue(
                f"Invalid TensorSpec shape {shape!r}: expected a tuple of ints, -1 for a dimension of any size."
            )
        self._type = _clean_dtype(type)
        self._shape = tuple(int(d) if d is not None else -1 for d in shape)
        self._name = name

    @property
    def type(self) -> Any:
        return self._type

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def required(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "tensor", "tensor-spec": {"dtype": dtype_name(self._type),
                                                              "shape": list(self._shape)}}
        if self._name is not None:
            d["name"] = self._name
        return d

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> TensorSpec:
        spec = kwargs.get("tensor-spec")
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise InvalidParameterValue(
                f"Invalid tensor spec {kwargs!r}: expected {{'type': 'tensor', 'tensor-spec': "
                "{'dtype': ..., 'shape': [...]}}."
            )
        return cls(_dtype_from_name(spec["dtype"]), tuple(spec["shape"]), kwargs.get("name"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorSpec) and (self._type, self._shape, self._name) == (
            other._type, other._shape, other._name)

    def __hash__(self) -> int:
        return hash((str(self._type), self._shape, self._name))

    def __repr__(self) -> str:
        desc = f"Tensor({dtype_name(self._type)!r}, {self._shape})"
        return f"{self._name!r}: {desc}" if self._name is not None else desc


def _spec_from_dict(d: dict[str, Any]) -> ColSpec | TensorSpec:
    if not isinstance(d, dict) or "type" not in d:
        raise InvalidParameterValue(f"Invalid schema entry {d!r}: expected a dict with a 'type'.")
    if d["type"] == "tensor":
        return TensorSpec.from_json_dict(**d)
    return ColSpec.from_json_dict(**d)


class Schema:
    """An ordered list of all-`ColSpec` or all-`TensorSpec` inputs (or outputs), all named or none."""

    def __init__(self, inputs: list[ColSpec | TensorSpec]) -> None:
        inputs = list(inputs)
        if not inputs:
            raise InvalidParameterValue("A Schema needs at least one ColSpec or TensorSpec; received none.")
        if not (all(isinstance(x, ColSpec) for x in inputs) or all(isinstance(x, TensorSpec) for x in inputs)):
            kinds = sorted({type(x).__name__ for x in inputs})
            raise InvalidParameterValue(
                f"A Schema holds only ColSpecs or only TensorSpecs; received {', '.join(kinds)}.")
        named = [x.name is not None for x in inputs]
        if any(named) and not all(named):
            raise InvalidParameterValue(
                "A Schema's entries must be all named or all unnamed; received a mix: "
                f"{[x.name for x in inputs]}.")
        names = [x.name for x in inputs if x.name is not None]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"A Schema's names must be unique; received {names}.")
        self._inputs = inputs

    @property
    def inputs(self) -> list[ColSpec | TensorSpec]:
        return self._inputs

    def __len__(self) -> int:
        return len(self._inputs)

    def __iter__(self) -> Any:
        return iter(self._inputs)

    def is_tensor_spec(self) -> bool:
        return isinstance(self._inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return self._inputs[0].name is not None

    def input_names(self) -> list[str | int]:
        """The names, or the positions 0..n-1 when unnamed."""
        return [x.name if x.name is not None else i for i, x in enumerate(self._inputs)]

    def required_input_names(self) -> list[str | int]:
        return [n for n, x in zip(self.input_names(), self._inputs, strict=True) if x.required]

    def input_types(self) -> list[Any]:
        return [x.type for x in self._inputs]

    def input_types_dict(self) -> dict[str, Any]:
        return {x.name: x.type for x in self._inputs if x.name is not None}

    def input_dict(self) -> dict[str, ColSpec | TensorSpec]:
        return {x.name: x for x in self._inputs if x.name is not None}

    def numpy_types(self) -> list[Any]:
        if self.is_tensor_spec():
            return [x.type for x in self._inputs]
        return [x.type.to_numpy() for x in self._inputs]

    def to_dict(self) -> list[dict[str, Any]]:
        return [x.to_dict() for x in self._inputs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str | list[Any]) -> Schema:
        data = json.loads(json_str) if isinstance(json_str, str) else json_str
        if not isinstance(data, list):
            raise InvalidParameterValue(f"Invalid schema JSON {json_str!r}: expected a JSON list of specs.")
        return cls([_spec_from_dict(d) for d in data])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._inputs == other._inputs

    def __hash__(self) -> int:
        return hash(tuple(self._inputs))

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(x) for x in self._inputs) + "]"


class ParamSpec:
    """One inference parameter: a name, a type, a default and an optional shape ((-1,) for a list)."""

    def __init__(self, name: str, dtype: DataType | str, default: Any, shape: tuple[int, ...] | None = None) -> None:
        self._name = str(name)
        self._dtype = DataType.from_name(dtype)
        self._shape = tuple(shape) if shape is not None else None
        if self._shape not in (None, (-1,)):
            raise InvalidParameterValue(
                f"Invalid shape {shape!r} for parameter {name!r}: expected None (a scalar) or (-1,) (a list).")
        self._default = self.validate_value(default) if default is not None else None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> DataType:
        return self._dtype

    @property
    def type(self) -> DataType:
        return self._dtype

    @property
    def default(self) -> Any:
        return self._default

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    def _convert_scalar(self, value: Any) -> Any:
        t = self._dtype
        ok: bool
        if t is DataType.boolean:
            ok = isinstance(value, bool)
        elif t in (DataType.integer, DataType.long):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif t in (DataType.float, DataType.double):
            if isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            ok = isinstance(value, float)
        elif t is DataType.string:
            ok = isinstance(value, str)
        elif t is DataType.binary:
            ok = isinstance(value, bytes)
        else:
            if isinstance(value, str):
                try:
                    value = _dt.datetime.fromisoformat(value)
                except ValueError:
                    pass
            ok = isinstance(value, _dt.datetime | _dt.date)
        if not ok:
            raise InvalidParameterValue(
                f"Invalid value {value!r} ({type(value).__name__}) for parameter {self._name!r}: "
                f"expected {t.name}.")
        return value

    def validate_value(self, value: Any) -> Any:
        """Return `value` converted to this spec's type, or raise naming expected and received."""
        if hasattr(value, "tolist") and not isinstance(value, str | bytes):
            value = value.tolist()
        if self._shape is None:
            if isinstance(value, list | tuple):
                raise InvalidParameterValue(
                    f"Invalid value {value!r} for parameter {self._name!r}: expected a scalar {self._dtype.name}, "
                    "received a list.")
            return self._convert_scalar(value)
        if not isinstance(value, list | tuple):
            raise InvalidParameterValue(
                f"Invalid value {value!r} for parameter {self._name!r}: expected a list of {self._dtype.name}.")
        return [self._convert_scalar(v) for v in value]

    def to_dict(self) -> dict[str, Any]:
        default = self._default
        if isinstance(default, _dt.date | _dt.datetime):
            default = default.isoformat()
        elif isinstance(default, list):
            default = [d.isoformat() if isinstance(d, _dt.date | _dt.datetime) else d for d in default]
        return {"name": self._name, "type": self._dtype.name, "default": default,
                "shape": list(self._shape) if self._shape is not None else None}

    @classmethod
    def from_json_dict(cls, **kwargs: Any) -> ParamSpec:
        for key in ("name", "type"):
            if key not in kwargs:
                raise InvalidParameterValue(f"Invalid parameter spec {kwargs!r}: missing {key!r}.")
        shape = kwargs.get("shape")
        return cls(kwargs["name"], kwargs["type"], kwargs.get("default"), tuple(shape) if shape else None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        shape = f" (shape: {self._shape})" if self._shape is not None else ""
        return f"{self._name!r}: {self._dtype.name} (default: {self._default!r}){shape}"


class ParamSchema:
    """The inference parameters a model accepts, with unique names."""

    def __init__(self, params: list[ParamSpec]) -> None:
        params = list(params)
        if not all(isinstance(p, ParamSpec) for p in params):
            raise InvalidParameterValue(
                f"ParamSchema takes ParamSpecs; received {[type(p).__name__ for p in params]}.")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"Parameter names must be unique; received {names}.")
        self._params = params

    @property
    def params(self) -> list[ParamSpec]:
        return self._params

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Any:
        return iter(self._params)

    def to_dict(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self._params]

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, json_str: str | list[Any]) -> ParamSchema:
        data = json.loads(json_str) if isinstance(json_str, str) else json_str
        if not isinstance(data, list):
            raise InvalidParameterValue(f"Invalid parameter schema JSON {json_str!r}: expected a JSON list.")
        return cls([ParamSpec.from_json_dict(**d) for d in data])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self._params == other._params

    def __hash__(self) -> int:
        return hash(tuple(self._params))

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(p) for p in self._params) + "]"
