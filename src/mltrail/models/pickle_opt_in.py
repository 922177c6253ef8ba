"""The one check before anything from a model's files is unpickled: the user's explicit opt-in.

Unpickling runs code that the model's author chose, so mltrail needs two yeses: the caller's
`allow_pickle=True` and the environment variable `MLTRAIL_ALLOW_PICKLE=true`. (MLflow allows it by
default; `MLFLOW_ALLOW_PICKLE_DESERIALIZATION` is not read here on purpose, so that a setting made
for MLflow never turns this on.)
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import IO, Any

from mltrail.errors import InvalidParameterValue

ALLOW_PICKLE_ENV = "MLTRAIL_ALLOW_PICKLE"
_TRUE = ("1", "true", "yes", "on")


def env_allows_pickle() -> bool:
    """Whether the environment variable `MLTRAIL_ALLOW_PICKLE` says yes."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in _TRUE


def pickle_allowed(allow_pickle: bool | None = None) -> bool:
    """Whether unpickling is allowed: `allow_pickle` is True and the environment variable says yes.

    `None` asks about the environment variable alone.
    """
    if allow_pickle is None:
        return env_allows_pickle()
    return allow_pickle is True and env_allows_pickle()


def missing_opt_ins(allow_pickle: bool | None) -> str:
    """Which of the two yeses is missing, for the refusal's message."""
    missing = [m for m, ok in ((f"allow_pickle=True (received allow_pickle={allow_pickle!r})", allow_pickle is True),
                               (f"the environment variable {ALLOW_PICKLE_ENV}=true", env_allows_pickle())) if not ok]
    return " and ".join(missing)


def pickle_refused(what: str, where: str, allow_pickle: bool | None = None) -> InvalidParameterValue:
    """The error for a refused unpickling of `what` (e.g. "custom objects") from the file(s) `where`."""
    return InvalidParameterValue(
        f"Deserializing {what} using cloudpickle is disallowed, but this model was saved with {what} in pickle "
        f"format ({where}). Unpickling runs code from the model's files: if you trust them, pass allow_pickle=True "
        f"and set the environment variable {ALLOW_PICKLE_ENV}=true (missing: {missing_opt_ins(allow_pickle)}).")


def load_opted_in(file: IO[bytes], allow_pickle: bool | None, refusal: Callable[[], Exception],
                  unpickler: Callable[[IO[bytes]], pickle.Unpickler] = pickle.Unpickler) -> Any:
    """Unpickle one object from `file`: the only place mltrail unpickles, and only with both yeses.

    The check sits here, beside the load, so no caller can unpickle without it; `refusal()` is the
    caller's error (it names what was refused and where). `unpickler` may narrow what loads
    (`mltrail.pyfunc.pickled` maps MLflow's classes to ours); cloudpickle's files are plain pickles.
    """
    if not pickle_allowed(allow_pickle):
        raise refusal()
    return unpickler(file).load()  # noqa: S301  (the user opted in twice, checked just above)
