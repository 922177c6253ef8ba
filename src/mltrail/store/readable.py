"""Which resources of one kind a caller may read: the constraint a search takes on a shared server.

The tracking server's authorization builds one `Readable` per caller and resource kind
(experiment ids, registered model names) from the caller's grants; the SQL store turns it into
a condition of the search query, so results are filtered before paging, never after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Readable:
    """The ids a caller may read, decided as the server decides one resource's permission.

    A direct grant decides first (`granted` allow reading, `refused` do not); else the best
    matching role pattern (`patterns`: fnmatch-style pattern, whether its permission reads);
    else `default` (whether the server's default permission reads).
    """

    granted: frozenset[str] = frozenset()
    refused: frozenset[str] = frozenset()
    patterns: tuple[tuple[str, bool], ...] = field(default=())
    default: bool = False

    def allows(self, resource_id: str) -> bool:
        """Whether the caller may read the resource with this id (or name)."""
        if resource_id in self.granted:
            return True
        if resource_id in self.refused:
            return False
        matched = [reads for pattern, reads in self.patterns if fnmatchcase(resource_id, pattern)]
        if matched:
            return any(matched)
        return self.default

    def needs_candidates(self) -> bool:
        """Whether deciding needs each candidate id in Python (role patterns), not only the grant lists."""
        return bool(self.patterns)

    def keep(self, ids: list[str]) -> list[str]:
        """The readable ids of `ids`, in their order."""
        return [i for i in ids if self.allows(i)]
