"""`mltrail models build-docker`: write the Dockerfile's build context to a temp directory and build it.

The image is built by the local `docker` CLI, or by `podman` (no daemon needed) when docker is not
installed or its daemon does not answer. The build tool's output streams through as it comes. When
neither can build, one error says what is missing and what to do instead (`generate-dockerfile`, then
build the directory on a machine that has docker).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from mltrail.errors import MltrailException

_PROBE_TIMEOUT_S = 30.0


class ImageBuildError(MltrailException):
    """No container tool can build here, or the build failed (INTERNAL_ERROR, as MltrailException's default)."""


@dataclass(frozen=True)
class Builder:
    """A container tool that answered: its executable and its name (docker or podman)."""

    executable: str
    name: str

    def build_command(self, image_name: str) -> list[str]:
        """The build command, run in the context directory (MLflow's `docker build -t NAME -f Dockerfile .`)."""
        return [self.executable, "build", "-t", image_name, "-f", "Dockerfile", "."]


def _probe(executable: str) -> str | None:
    """None when `<tool> info` succeeds, else the tool's own words for why not."""
    try:
        done = subprocess.run([executable, "info"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if done.returncode == 0:
        return None
    lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"`{executable} info` exited with status {done.returncode}"


def find_builder() -> Builder:
    """The first container tool that can build: docker with a daemon that answers, else podman.

    Raises:
        ImageBuildError: neither is installed, or none that is installed can build (the reasons named).
    """
    problems: list[str] = []
    for name in ("docker", "podman"):
        executable = shutil.which(name)
        if executable is None:
            problems.append(f"{name}: not installed (not on PATH)")
            continue
        reason = _probe(executable)
        if reason is None:
            return Builder(executable, name)
        problems.append(f"{name}: installed at {executable}, but `{name} info` failed: {reason}")
    raise ImageBuildError(
        "Cannot build a Docker image: neither docker nor podman can build here.\n  " + "\n  ".join(problems)
        + "\nStart the Docker daemon (or install Docker or Podman), or run `mltrail models generate-dockerfile "
        "-m <model-uri> -d <dir>` and build that directory with `docker build` on a machine that has Docker.")


def run_build(builder: Builder, context_dir: str, image_name: str, echo: Callable[[str], None]) -> None:
    """Run the build in `context_dir`, passing each line of its output to `echo` as it comes.

    Raises:
        ImageBuildError: the build exited with a non-zero status.
    """
    command = builder.build_command(image_name)
    echo(f"mltrail: building image {image_name!r} with `{' '.join(command)}` in {context_dir}")
    # BuildKit's default progress output redraws lines in place; plain output streams line by line
    env = {**os.environ, "BUILDKIT_PROGRESS": os.environ.get("BUILDKIT_PROGRESS", "plain")}
    with subprocess.Popen(command, cwd=context_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", bufsize=1, env=env) as proc:
        if proc.stdout is not None:
            for line in proc.stdout:
                echo(line.rstrip("\n"))
        status = proc.wait()
    if status != 0:
        raise ImageBuildError(
            f"Docker build failed: `{' '.join(command)}` exited with status {status} (its output is above).")


def build_image(model_uri: str | None, image_name: str, echo: Callable[[str], None], base_image: str | None = None,
                enable_mlserver: bool = False, mltrail_home: str | None = None) -> Builder:
    """Build an image serving the model on port 8080 (or one mounted at /opt/ml/model when no URI is given).

    The container tool is found before anything is written, so a machine without one fails fast.

    Returns:
        The builder that built it.
    """
    from mltrail.serving._package import generate_dockerfile

    builder = find_builder()
    with tempfile.TemporaryDirectory(prefix="mltrail-docker-") as tmp:
        context = os.path.join(tmp, "context")
        generate_dockerfile(model_uri, context, base_image, enable_mlserver, mltrail_home)
        run_build(builder, context, image_name, echo)
    return builder
