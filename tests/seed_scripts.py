"""The seeds' code blocks as runnable scripts (`../shared/acceptance/`, beside the repository as CI
checks it out), copied into a work directory, for our client or rewritten for the real `mlflow`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent.parent
# ../shared beside the checkout (CI's layout), else the workspace's; MLTRAIL_ACCEPTANCE_DIR overrides both
_DEFAULTS = (_REPO.parent / "shared" / "acceptance", Path("/work/shared/acceptance"))
ACCEPTANCE = Path(os.environ["MLTRAIL_ACCEPTANCE_DIR"]) if os.environ.get("MLTRAIL_ACCEPTANCE_DIR") else \
    next((p for p in _DEFAULTS if p.is_dir()), _DEFAULTS[0])


def seed_script(name: str, workdir: Path, for_mlflow: bool) -> Path:
    """Copy seed script `name` (and its `_check.py`) into `workdir`; for the real mlflow client the
    `import mltrail as mlflow` lines become `import mlflow`. Fails on CI (MLTRAIL_REQUIRE_ACCEPTANCE=1,
    which .ci/run sets) when the scripts are missing; skips elsewhere."""
    if not ACCEPTANCE.is_dir():
        reason = f"no acceptance scripts at {ACCEPTANCE} (set MLTRAIL_ACCEPTANCE_DIR)"
        if os.environ.get("MLTRAIL_REQUIRE_ACCEPTANCE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ACCEPTANCE / "_check.py", workdir / "_check.py")
    text = (ACCEPTANCE / f"{name}.py").read_text()
    if for_mlflow:
        text = (text.replace("import mltrail as mlflow", "import mlflow").replace("from mltrail.", "from mlflow.")
                .replace("from mltrail import", "from mlflow import"))
        assert "mltrail" not in text, "the script still names mltrail after the import rewrite"
    path = workdir / f"{name}.py"
    path.write_text(text)
    return path
