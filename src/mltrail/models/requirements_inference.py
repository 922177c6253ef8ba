"""`mltrail.models.infer_pip_requirements`: the packages a saved model imports when it loads (and predicts).

As MLflow does, the model is loaded in a child process (`sys.executable -m` this module) with
`builtins.__import__` and `importlib.import_module` recording every top-level module imported;
the modules map to installed distributions (`importlib.metadata.packages_distributions`), pinned
at their installed versions. The standard library goes; mltrail goes in as `mltrail==<version>`, and
every package that another listed package (mltrail included) already requires is pruned. Loading
goes through our loaders, so a pickled model loads only with the pickle opt-in.
"""

from __future__ import annotations

import builtins
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from mltrail.errors import InvalidParameterValue, MltrailException

_logger = logging.getLogger(__name__)

# flavor name -> the mltrail module whose load_model loads it (MLflow's flavor names; pyfunc loads any model)
_FLAVOR_LOADERS = {
    "python_function": "mltrail.pyfunc",
    "pyfunc": "mltrail.pyfunc",
    "tensorflow": "mltrail.tensorflow",
    "keras": "mltrail.keras",
}
# setuptools is imported by packages that read their own metadata; every environment has it (as MLflow skips it)
_NEVER_LISTED = frozenset({"mltrail", "setuptools"})


def _top_level(name: str) -> str:
    return name.partition(".")[0]


class _ImportRecorder:
    """Record the top-level name of every module imported while active (even ones already in sys.modules)."""

    def __init__(self) -> None:
        self.modules: set[str] = set()

    def _record_import(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(name: str, globals: dict[str, Any] | None = None, locals: Any = None, fromlist: Any = (),
                    level: int = 0) -> Any:
            if level == 0:
                self.modules.add(_top_level(name))
            elif globals and globals.get("__package__"):  # a relative import: its package's top level
                self.modules.add(_top_level(str(globals["__package__"])))
            return original(name, globals, locals, fromlist, level)

        return wrapper

    def _record_import_module(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(name: str, package: str | None = None) -> Any:
            self.modules.add(_top_level(package if name.startswith(".") and package else name))
            return original(name, package)

        return wrapper

    def __enter__(self) -> _ImportRecorder:
        self._before = set(sys.modules)
        self._import, self._import_module = builtins.__import__, importlib.import_module
        builtins.__import__ = self._record_import(self._import)
        importlib.import_module = self._record_import_module(self._import_module)
        return self

    def __exit__(self, *exc: object) -> None:
        builtins.__import__ = self._import
        importlib.import_module = self._import_module
        # modules a C extension or an import hook brought in without an import statement
        self.modules.update(_top_level(m) for m in set(sys.modules) - self._before)


def _load_and_predict(loader_module: str, model_path: str, allow_pickle: bool) -> None:
    """In the child: load the model as its flavor does; predict on its input example when it has one."""
    import inspect

    module = importlib.import_module(loader_module)
    load = module.load_model
    kwargs = {"allow_pickle": True} if allow_pickle and "allow_pickle" in inspect.signature(load).parameters else {}
    model = load(model_path, **kwargs)
    example = getattr(model, "input_example", None)
    if example is not None and hasattr(model, "predict"):
        try:
            model.predict(example)
        except Exception:  # as MLflow: what predict would import is then missed, and we say so
            print("Failed to run predict on input_example, dependencies introduced in predict are not captured.\n"
                  + traceback.format_exc(), file=sys.stderr)


def _capture_main(argv: list[str]) -> None:
    loader_module, model_path, allow_pickle, output = argv
    with _ImportRecorder() as recorder:
        _load_and_predict(loader_module, model_path, allow_pickle == "1")
    with open(output, "w", encoding="utf-8") as fh:
        json.dump(sorted(m for m in recorder.modules if m), fh)


def _capture_imported_modules(local_path: str, loader_module: str, allow_pickle: bool, timeout: float | None,
                              extra_env_vars: dict[str, str] | None) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "modules.json")
        cmd = [sys.executable, "-m", __name__, loader_module, local_path, "1" if allow_pickle else "0", output]
        env = {**os.environ, **{str(k): str(v) for k, v in (extra_env_vars or {}).items()}}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.stderr:
            _logger.debug("Requirement inference subprocess stderr:\n%s", proc.stderr)
        if proc.returncode != 0:
            raise MltrailException(
                f"Loading the model at {local_path!r} with {loader_module}.load_model in a subprocess failed "
                f"(exit status {proc.returncode}):\n{proc.stderr.strip()[-3000:]}")
        with open(output, encoding="utf-8") as fh:
            return [str(m) for m in json.load(fh)]


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _requires(dist: str) -> set[str]:
    """The distributions `dist` requires unconditionally on this platform (extras' requirements excluded)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        lines = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return set()
    out = set()
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.add(_canonical(req.name))
    return out


def _requires_recursive(dist: str, seen: set[str]) -> set[str]:
    for dep in _requires(dist):
        if dep not in seen:
            seen.add(dep)
            _requires_recursive(dep, seen)
    return seen


def _prune(packages: set[str]) -> set[str]:
    """Drop the packages another package in the set already requires (e.g. numpy, given scikit-learn)."""
    required: set[str] = set()
    for p in packages:
        required |= _requires_recursive(p, set())
    return {p for p in packages if p not in required}


def _pinned(dist: str) -> str:
    from importlib import metadata

    from packaging.version import InvalidVersion, Version

    version = metadata.version(dist)
    try:
        parsed = Version(version)
    except InvalidVersion:
        return f"{dist}=={version}"
    if parsed.local:  # a local label (1.0+cpu) is not installable from PyPI: pin the public version
        _logger.warning("Found %s version (%s) contains a local version label (+%s): the requirement is pinned as "
                        "'%s==%s'.", dist, version, parsed.local, dist, parsed.public)
        return f"{dist}=={parsed.public}"
    return f"{dist}=={version}"


def requirements_for_modules(modules: Iterable[str]) -> list[str]:
    """Pinned requirements for top-level module names: mltrail first, then the packages it does not bring."""
    from importlib import metadata

    by_module = metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    packages = {_canonical(dist) for m in modules if m not in stdlib for dist in by_module.get(m, [])}
    packages = _prune((packages - _NEVER_LISTED) | {"mltrail"}) - _NEVER_LISTED
    from mltrail.version import __version__

    return [f"mltrail=={__version__}", *sorted(_pinned(p) for p in packages)]


def infer_pip_requirements(model_uri: str, flavor: str, fallback: list[str] | None = None,
                           timeout: float | None = None, extra_env_vars: dict[str, str] | None = None, *,
                           allow_pickle: bool = False) -> list[str] | None:
    """The pip requirements of a saved model, found by loading it in a subprocess and recording its imports.

    Args:
        model_uri: the model (a local path, `runs:/`, `models:/` or artifact URI).
        flavor: the flavor to load it with: "python_function" (or "pyfunc"), "tensorflow" or "keras".
        fallback: returned (with a warning) when inference fails; None raises the error instead.
        timeout: seconds the subprocess may take.
        extra_env_vars: environment variables for the subprocess.
        allow_pickle: let a model saved as a pickle load (it also needs MLTRAIL_ALLOW_PICKLE=true).

    Returns:
        Pinned requirements, e.g. `["mltrail==0.1.0", "tensorflow-cpu==2.21.0"]`.
    """
    try:
        loader = _FLAVOR_LOADERS.get(flavor)
        if loader is None:
            raise InvalidParameterValue(
                f"Cannot infer the requirements of a model of flavor {flavor!r}: expected one of "
                f"{sorted(_FLAVOR_LOADERS)}.")
        from mltrail.uris import resolve_model_uri

        local = resolve_model_uri(model_uri)
        modules = _capture_imported_modules(local, loader, allow_pickle, timeout, extra_env_vars)
        return requirements_for_modules(modules)
    except Exception as e:
        if fallback is None:
            raise
        reason = (f"the subprocess timed out after {timeout} seconds" if isinstance(e, subprocess.TimeoutExpired)
                  else f"{type(e).__name__}: {e}")
        _logger.warning("Encountered an unexpected error while inferring pip requirements (model URI: %s, flavor: "
                        "%s). Fall back to return %s. (%s)", model_uri, flavor, fallback, reason)
        _logger.debug("", exc_info=True)
        return fallback


__all__ = ["infer_pip_requirements", "requirements_for_modules"]

if __name__ == "__main__":
    _capture_main(sys.argv[1:])
