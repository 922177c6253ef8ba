"""Model serving: the scoring server (MLflow's `/invocations` and the V2 protocol), batching and the CLI.

Nothing heavy loads on import: `create_scoring_app` and `ServingSettings` load Starlette on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServingSettings", "create_scoring_app"]


def __getattr__(name: str) -> Any:
    if name == "create_scoring_app":
        from mltrail.serving.app import create_scoring_app

        return create_scoring_app
    if name == "ServingSettings":
        from mltrail.serving._settings import ServingSettings

        return ServingSettings
    raise AttributeError(f"module 'mltrail.serving' has no attribute {name!r}")
