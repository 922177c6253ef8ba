"""Keras custom objects: recorded by reference when mltrail saves, unpickled only on the user's opt-in.

mltrail writes `{name: "module:qualname"}` into the flavor's MLmodel entry and, at load time, looks
each one up in modules the process has already imported, so loading never imports a module that a
model file names. MLflow's `tensorflow` flavor cloudpickles them instead
(`data/custom_objects.cloudpickle`, `data/global_custom_objects.cloudpickle`); those files are read
only with the pickle opt-in (`mltrail.models.pickle_opt_in`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.models.pickle_opt_in import load_opted_in, pickle_refused

# MLflow's file names under the flavor's data directory, in merge order: the model's own custom objects
# override the Keras-global ones saved beside them
PICKLED_FILES = ("global_custom_objects.cloudpickle", "custom_objects.cloudpickle")


def custom_object_refs(custom_objects: dict[str, Any] | None) -> dict[str, str] | None:
    """`{name: "module:qualname"}` for each custom object, checking that it can be found again."""
    if not custom_objects:
        return None
    if not isinstance(custom_objects, dict):
        raise InvalidParameterValue(
            f"custom_objects must be a dict of name -> class or function; received {type(custom_objects).__name__}.")
    refs = {}
    for name, obj in custom_objects.items():
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not module or not qualname:
            raise InvalidParameterValue(
                f"custom_objects[{name!r}] = {obj!r} is not a class or function: expected something with a module "
                "and a name, so it can be found again at load time.")
        refs[str(name)] = f"{module}:{qualname}"
    return refs


def resolve_custom_objects(refs: dict[str, str] | None, given: dict[str, Any] | None) -> tuple[dict[str, Any],
                                                                                                list[str]]:
    """The recorded custom objects found in already-imported modules, overridden by `given`; and the missing ones."""
    found: dict[str, Any] = {}
    missing: list[str] = []
    for name, ref in (refs or {}).items():
        module_name, _, qualname = str(ref).partition(":")
        obj: Any = sys.modules.get(module_name)  # never import: only what the user already loaded
        for part in qualname.split("."):
            obj = getattr(obj, part, None) if obj is not None and part != "<locals>" else None
        if obj is not None:
            found[name] = obj
        elif name not in (given or {}):
            missing.append(f"{name} ({ref})")
    found.update(given or {})
    return found, missing


def pickled_files(data_dir: str) -> list[str]:
    """MLflow's cloudpickled custom-object files present in `data_dir`, in the order MLflow merges them."""
    return [p for p in (os.path.join(data_dir, f) for f in PICKLED_FILES) if os.path.isfile(p)]


def load_pickled(files: list[str], allow_pickle: bool) -> dict[str, Any]:
    """The custom objects of MLflow's cloudpickle files, merged as MLflow does (later files win).

    Args:
        files: from `pickled_files`.
        allow_pickle: the caller's opt-in (the environment variable must say yes as well).

    Raises:
        InvalidParameterValue: there are such files and the user did not opt in to unpickling.
    """
    if not files:
        return {}
    def refusal() -> Exception:
        return pickle_refused("custom objects", ", ".join(files), allow_pickle)

    merged: dict[str, Any] = {}
    for path in files:
        with open(path, "rb") as fh:
            loaded = load_opted_in(fh, allow_pickle, refusal)
        if not isinstance(loaded, dict):
            raise InvalidParameterValue(
                f"{path!r} should hold a dict of custom objects; it holds a {type(loaded).__name__}.")
        merged.update(loaded)
    return merged
