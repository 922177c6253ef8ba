"""Permission levels (MLflow's names and capabilities) and the resource types they apply to."""

from __future__ import annotations

from dataclasses import dataclass

from mltrail.errors import InvalidParameterValue

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
RESOURCE_TYPES = (EXPERIMENT, REGISTERED_MODEL)


@dataclass(frozen=True)
class Level:
    """What a permission lets its holder do with one resource."""

    name: str
    can_read: bool
    can_use: bool
    can_update: bool
    can_delete: bool
    can_manage: bool


READ = Level("READ", can_read=True, can_use=False, can_update=False, can_delete=False, can_manage=False)
USE = Level("USE", can_read=True, can_use=True, can_update=False, can_delete=False, can_manage=False)
EDIT = Level("EDIT", can_read=True, can_use=True, can_update=True, can_delete=False, can_manage=False)
MANAGE = Level("MANAGE", can_read=True, can_use=True, can_update=True, can_delete=True, can_manage=True)
NO_PERMISSIONS = Level("NO_PERMISSIONS", can_read=False, can_use=False, can_update=False, can_delete=False,
                       can_manage=False)

LEVELS: dict[str, Level] = {lv.name: lv for lv in (READ, USE, EDIT, MANAGE, NO_PERMISSIONS)}
# Order for "the best of several grants" (a user's direct grant and the patterns of their roles).
PRIORITY: dict[str, int] = {"NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}


def level(name: str) -> Level:
    """The level called `name`; an unknown name is refused with the valid ones listed (MLflow's words)."""
    found = LEVELS.get(name)
    if found is None:
        raise InvalidParameterValue(f"Invalid permission '{name}'. Valid permissions are: {tuple(LEVELS)}")
    return found


def strongest(*names: str) -> str:
    """The name of the most capable of the given levels (`NO_PERMISSIONS` when none is given)."""
    return max(names, key=lambda n: PRIORITY.get(n, 0), default=NO_PERMISSIONS.name)


def check_resource_type(resource_type: str) -> str:
    """`resource_type` if it is one permissions apply to, else MLflow's error naming the valid ones."""
    if resource_type not in RESOURCE_TYPES:
        raise InvalidParameterValue(
            f"Invalid resource type '{resource_type}'. Valid resource types are: {RESOURCE_TYPES}")
    return resource_type
