"""Model registry entities with MLflow's names (`mlflow.entities.model_registry`): registered models and versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ModelVersionStage:
    """MLflow's (deprecated) model version stages; matching is case-insensitive."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    ALL = ("None", "Staging", "Production", "Archived")
    ACTIVE = ("Staging", "Production")

    @classmethod
    def canonical(cls, stage: str) -> str:
        """The stage's canonical spelling ('production' -> 'Production'), or InvalidParameterValue."""
        for s in cls.ALL:
            if isinstance(stage, str) and stage.lower() == s.lower():
                return s
        from mltrail.errors import InvalidParameterValue

        raise InvalidParameterValue(
            f"Invalid Model Version stage: {stage!r}. Value must be one of {', '.join(cls.ALL)}.")


class ModelVersionStatus:
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


def _version_number(version: Any) -> int:
    """A model version's number from an int or its text ("3"); anything else is refused by name."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str) and version.strip().isdigit():
        return int(version)
    from mltrail.errors import InvalidParameterValue

    raise InvalidParameterValue(f"Model version must be an integer, got {version!r}.")


def _kv_json(d: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in d.items()]


def _kv_from_json(items: Any) -> dict[str, str]:
    return {str(it["key"]): str(it.get("value", "")) for it in items or [] if isinstance(it, dict) and "key" in it}


@dataclass
class ModelVersion:
    """One version of a registered model. `version` is an int, as MLflow's SQL store returns it; the REST
    JSON (`to_dict`) carries it as a string, as MLflow's protocol does."""

    name: str
    version: int
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    user_id: str | None = None
    current_stage: str = "None"
    source: str | None = None
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_link: str | None = None
    aliases: list[str] = field(default_factory=list)
    model_id: str | None = None

    def __post_init__(self) -> None:
        # stores and JSON hand the number over as text ("3"); MLflow's entity holds the int
        self.version = _version_number(self.version)

    def to_dict(self) -> dict[str, Any]:
        """MLflow's REST JSON for a ModelVersion (unset fields left out)."""
        d: dict[str, Any] = {
            "name": self.name, "version": str(self.version), "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp, "user_id": self.user_id,
            "current_stage": self.current_stage, "description": self.description, "source": self.source,
            "run_id": self.run_id, "status": self.status, "status_message": self.status_message,
            "tags": _kv_json(self.tags), "run_link": self.run_link, "aliases": list(self.aliases),
            "model_id": self.model_id,
        }
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        def ts(key: str) -> int | None:
            value = d.get(key)
            return int(value) if value not in (None, "") else None

        return cls(
            name=d.get("name", ""), version=d.get("version", 0), creation_timestamp=ts("creation_timestamp"),
            last_updated_timestamp=ts("last_updated_timestamp"), description=d.get("description") or None,
            user_id=d.get("user_id") or None, current_stage=d.get("current_stage") or "None",
            source=d.get("source") or None, run_id=d.get("run_id") or None,
            status=d.get("status") or ModelVersionStatus.READY, status_message=d.get("status_message") or None,
            tags=_kv_from_json(d.get("tags")), run_link=d.get("run_link") or None,
            aliases=[str(a) for a in d.get("aliases") or []], model_id=d.get("model_id") or None)


@dataclass
class RegisteredModel:
    """A registered model: `latest_versions` holds the newest version per stage, `aliases` maps alias -> version."""

    name: str
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    description: str | None = None
    latest_versions: list[ModelVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """MLflow's REST JSON for a RegisteredModel (unset fields left out)."""
        d: dict[str, Any] = {
            "name": self.name, "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp, "description": self.description,
            "latest_versions": [mv.to_dict() for mv in self.latest_versions], "tags": _kv_json(self.tags),
            "aliases": [{"alias": a, "version": v} for a, v in self.aliases.items()],
        }
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisteredModel:
        def ts(key: str) -> int | None:
            value = d.get(key)
            return int(value) if value not in (None, "") else None

        return cls(
            name=d.get("name", ""), creation_timestamp=ts("creation_timestamp"),
            last_updated_timestamp=ts("last_updated_timestamp"), description=d.get("description") or None,
            latest_versions=[ModelVersion.from_dict(x) for x in d.get("latest_versions") or []],
            tags=_kv_from_json(d.get("tags")),
            aliases={str(a["alias"]): str(a.get("version", "")) for a in d.get("aliases") or []
                     if isinstance(a, dict) and "alias" in a})
