"""Plain values the engine passes around: resources from manifests, field diffs, changes and plans. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "replace", "delete", "noop"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete", "noop")


def nearest_line(lines: dict[str, int], path: str) -> int | None:
    """The line of a dotted key ("spec.settings.number_of_shards"), else of its nearest parent that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return None


@dataclass(frozen=True)
class SourceLocation:
    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass
class Resource:
    """One desired object declared in a manifest."""

    kind: str
    name: str
    spec: dict[str, Any]
    source: SourceLocation
    depends_on: list[str] = field(default_factory=list)  # explicit "kind/name" references
    protected: bool = False
    # line of each key inside the document, by dotted path ("spec.settings.number_of_shards"), for errors
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    def line_of(self, path: str) -> SourceLocation:
        """The location of a nested key, falling back to the nearest parent, then the document."""
        line = nearest_line(self.lines, path)
        return self.source if line is None else SourceLocation(self.source.file, line)


@dataclass
class FieldDiff:
    path: str
    before: Any
    after: Any
    sensitive: bool = False  # shown as (sensitive value), never printed
    forces_replacement: bool = False


@dataclass
class Change:
    """What the plan will do to one resource."""

    kind: str
    name: str
    action: Action
    diffs: list[FieldDiff] = field(default_factory=list)
    reason: str = ""
    resource: Resource | None = None  # None for deletes of resources gone from the manifests
    live: Any = None  # the kind's own view of the live object, for its write methods

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass
class Plan:
    changes: list[Change]  # in dependency order (deletes in reverse order)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes)

    def counts(self) -> dict[str, int]:
        return {a: sum(1 for c in self.changes if c.action == a) for a in ACTIONS}
