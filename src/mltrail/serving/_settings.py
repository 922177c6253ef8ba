"""The scoring server's settings, and their round trip through environment variables.

Worker processes started by uvicorn (`--workers N`) read their settings from the environment,
so every field has an `MLTRAIL_SERVE_*` variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from mltrail.errors import InvalidParameterValue

_PREFIX = "MLTRAIL_SERVE_"


@dataclass(frozen=True)
class ServingSettings:
    """How the scoring server batches, limits and names what it serves.

    Args:
        model_uri: the model to load (a local directory once the CLI has resolved it).
        model_name: the name the V2 protocol serves the model under (`/v2/models/<name>`).
        model_version: the version V2 reports.
        batch_wait_ms: the most a batch waits for company while requests keep arriving.
        max_batch_rows: the row cap of one merged model call.
        max_body_mb: request bodies above this many MiB get 413.
        enable_mlserver: accepted for MLflow compatibility (V2 is always served).
    """

    model_uri: str = ""
    model_name: str = "model"
    model_version: str = "1"
    batch_wait_ms: float = 2.0
    max_batch_rows: int = 256
    max_body_mb: float = 100.0
    enable_mlserver: bool = False

    def __post_init__(self) -> None:
        if self.batch_wait_ms < 0:
            raise InvalidParameterValue(f"batch_wait_ms must be >= 0; received {self.batch_wait_ms}.")
        if self.max_batch_rows < 1:
            raise InvalidParameterValue(f"max_batch_rows must be >= 1; received {self.max_batch_rows}.")
        if self.max_body_mb <= 0:
            raise InvalidParameterValue(f"max_body_mb must be > 0; received {self.max_body_mb}.")
        if not self.model_name or "/" in self.model_name:
            raise InvalidParameterValue(
                f"model_name must be a non-empty name without '/'; received {self.model_name!r}.")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def to_env(self) -> dict[str, str]:
        """The settings as `MLTRAIL_SERVE_*` environment variables."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[_PREFIX + f.name.upper()] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Read the settings `to_env` wrote (missing variables keep their defaults)."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(_PREFIX + f.name.upper())
            if raw is None:
                continue
            default = f.default
            try:
                if isinstance(default, bool):
                    kwargs[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    kwargs[f.name] = int(raw)
                elif isinstance(default, float):
                    kwargs[f.name] = float(raw)
                else:
                    kwargs[f.name] = raw
            except ValueError:
                raise InvalidParameterValue(
                    f"Environment variable {_PREFIX + f.name.upper()}={raw!r} is not a valid "
                    f"{type(default).__name__}.") from None
        return cls(**kwargs)  # type: ignore[arg-type]
