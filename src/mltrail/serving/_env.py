"""`--env-manager virtualenv`: a virtual environment built from a model's `requirements.txt`, cached.

Environments live under `~/.cache/mltrail/envs/<hash>` (`MLTRAIL_ENV_ROOT` overrides the root),
keyed by the Python version and the requirements, and are built once (`python -m venv`, then one
`pip install`, so pip's own cache and the configured index serve the wheels). mltrail itself goes
in from the project it is installed from here when that is a local source tree (editable here:
editable there, so the environment always runs the current code); otherwise the model's pinned
`mltrail==<version>` comes from the index. A lock file keeps concurrent builds of one environment
from racing; a marker file says a build finished, so an interrupted build is redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from mltrail.errors import InvalidState, MltrailException

_log = logging.getLogger("mltrail.serving")
READY_MARKER = ".mltrail-env-ready"
_REQUIREMENTS = "requirements.txt"


def env_root() -> Path:
    """Where environments are cached (`MLTRAIL_ENV_ROOT`, else ~/.cache/mltrail/envs)."""
    root = os.environ.get("MLTRAIL_ENV_ROOT")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "mltrail" / "envs"


def local_mltrail_source() -> tuple[str, bool] | None:
    """(project directory, installed editable?) when this mltrail was installed from a local source tree."""
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        raw = metadata.distribution("mltrail").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        raw = None
    if raw:
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        url = str(info.get("url") or "")
        if url.startswith("file:"):
            path = unquote(urlparse(url).path)
            if os.path.isfile(os.path.join(path, "pyproject.toml")):
                return path, bool((info.get("dir_info") or {}).get("editable"))
    # not installed at all (run from a checkout on sys.path): src/mltrail -> the project two levels up
    project = Path(__file__).resolve().parents[3]  # src/mltrail/serving/_env.py
    if (project / "pyproject.toml").is_file() and (project / "src" / "mltrail").is_dir():
        return str(project), True
    return None


def _is_mltrail(line: str) -> bool:
    from mltrail.models.environment import requirement_name

    return requirement_name(line) == "mltrail"


def read_requirements(model_dir: str) -> list[str]:
    """The model's requirement lines (comments and blanks dropped); [] when it has no requirements.txt."""
    path = os.path.join(model_dir, _REQUIREMENTS)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        lines = [ln.strip() for ln in fh.read().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def install_spec(model_requirements: list[str]) -> tuple[list[str], list[str]]:
    """(requirement lines without mltrail, pip arguments that install mltrail)."""
    others = [r for r in model_requirements if not _is_mltrail(r)]
    source = local_mltrail_source()
    if source is not None:
        path, editable = source
        return others, (["-e", path] if editable else [path])
    pinned = [r for r in model_requirements if _is_mltrail(r)]
    if not pinned:
        from mltrail.version import __version__

        pinned = [f"mltrail=={__version__}"]
    return others, pinned


def env_key(requirements: list[str], mltrail_args: list[str]) -> str:
    """The cache key: Python version, the requirements and how mltrail is installed."""
    text = "\n".join([f"python={sys.version_info.major}.{sys.version_info.minor}", *sorted(requirements), "--",
                      *mltrail_args])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, log_file: Path) -> None:
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        with open(log_file, encoding="utf-8", errors="replace") as fh:
            tail = "".join(fh.readlines()[-25:])
        raise InvalidState(f"Could not {what} (exit status {proc.returncode}); see {log_file}. Last lines:\n{tail}")


def prepare_env(model_dir: str, echo: bool = True) -> Path:
    """The Python executable of a (cached) virtual environment with the model's requirements and mltrail.

    Raises:
        InvalidState: creating the environment or installing into it failed (pip's output is in
            `<env>.log`).
    """
    requirements, mltrail_args = install_spec(read_requirements(model_dir))
    key = env_key(requirements, mltrail_args)
    env_dir = env_root() / key
    python = env_python(env_dir)
    if (env_dir / READY_MARKER).is_file() and python.exists():
        return python
    with _locked(env_root() / f"{key}.lock"):
        if (env_dir / READY_MARKER).is_file() and python.exists():
            return python  # another process built it while we waited
        if env_dir.exists():
            shutil.rmtree(env_dir)  # an interrupted build
        log_file = env_root() / f"{key}.log"
        log_file.unlink(missing_ok=True)
        if echo:
            print(f"mltrail: building the model's environment in {env_dir} (once; log: {log_file})",
                  file=sys.stderr, flush=True)
        _run([sys.executable, "-m", "venv", str(env_dir)], "create a virtual environment", log_file)
        req_file = env_dir / "model-requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(req_file),
              *mltrail_args], "install the model's requirements", log_file)
        (env_dir / READY_MARKER).write_text(json.dumps({"requirements": requirements, "mltrail": mltrail_args}))
    return python


def exec_in_env(python: Path, args: list[str]) -> None:
    """Replace this process with `python -m mltrail.serving <args>` (signals then reach the server directly)."""
    argv = [str(python), "-m", "mltrail.serving", *args]
    _log.info("exec %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(str(python), argv)
    except OSError as e:
        raise MltrailException(f"Could not start {python}: {e}") from None


def unsatisfied_requirements(model_dir: str) -> list[str]:
    """The model's requirements this Python does not meet, each as `<requirement> (<what is installed>)`.

    Requirements whose environment markers exclude this platform are skipped; pip options
    (`-r`, `--index-url`, ...) cannot be checked without pip and are skipped too.
    """
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    for line in read_requirements(model_dir):
        if line.startswith("-"):
            continue
        try:
            req = Requirement(line.split(" #", 1)[0].strip())
        except InvalidRequirement as e:
            problems.append(f"{line} (not a valid requirement: {e})")
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{line} (not installed)")
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            problems.append(f"{line} (installed: {installed})")
    return problems
