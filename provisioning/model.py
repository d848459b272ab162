"""Plain values the engine passes around: resources from manifests, field diffs, operations, changes and plans.
No I/O. A plan is a value: every change carries the operations apply will perform, so it can be printed as
requests, saved to a file and applied exactly (provisioning/planfile.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "replace", "delete", "noop", "adopt", "move"]
ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete", "noop")
# adopt: an existing object this stack did not create becomes its own (`adopt: true`); move: an owned object is
# re-keyed under a new name (`moved_from`). Counted in summaries only when a plan has them.
OWNERSHIP_ACTIONS: tuple[Action, ...] = ("adopt", "move")


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
class Document:
    """One YAML document of a manifest file, as plain Python values with the source line of every key."""

    file: str  # display path of the manifest
    value: Any
    line: int  # line of the document's first node
    lines: dict[str, int] = field(default_factory=dict)  # dotted path -> source line


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
    adopt: bool = False  # `adopt: true`: an existing object nobody owns may become this stack's (lifecycle.py)
    moved_from: str | None = None  # `moved_from: kind/oldname`: the ledger record of oldname is re-keyed to this

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


SECRET_MARKER = "$secret"  # {"$secret": "ENV_NAME", "hash": "..."} stands for a write-only value in a request body


@dataclass(frozen=True)
class Request:
    """One HTTP request apply will send, exactly (secrets as markers, filled in from the environment at apply)."""

    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    # answers that still mean success: e.g. 404 on a DELETE of something already gone
    ignore: tuple[int, ...] = ()
    op: Literal["request"] = "request"

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": "request", "method": self.method, "path": self.path, "query": dict(self.query),
                "body": self.body, "ignore": list(self.ignore)}


@dataclass(frozen=True)
class Step:
    """Work that is not one request (trace and upload a model, wait for a deployment, reindex and count, bulk
    load a data file). `sends` lists the requests it may send, as "METHOD /path" patterns with * wildcards, so
    a reader (and the tests) can hold apply to them."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    sends: tuple[str, ...] = ()
    summary: str = ""
    op: Literal["step"] = "step"

    def describe(self) -> str:
        return f"{self.name}: {self.summary}" if self.summary else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"op": "step", "name": self.name, "args": dict(self.args), "sends": list(self.sends),
                "summary": self.summary}


Operation = Request | Step


def operation_from_dict(data: dict[str, Any]) -> Operation:
    if data.get("op") == "request":
        return Request(data["method"], data["path"], dict(data.get("query") or {}), data.get("body"),
                       tuple(data.get("ignore") or ()))
    return Step(data["name"], dict(data.get("args") or {}), tuple(data.get("sends") or ()), data.get("summary", ""))


HazardKind = Literal["data_loss", "interruption"]
HAZARD_SYMBOLS = {"data_loss": "!", "interruption": "~"}


@dataclass(frozen=True)
class Hazard:
    """What a change destroys (data_loss: apply refuses it without --allow-data-loss) or makes unavailable for a
    while (interruption: shown, never refused)."""

    kind: HazardKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}


@dataclass
class Change:
    """What the plan will do to one resource: the action, the field diffs shown, and the operations apply runs."""

    kind: str
    name: str
    action: Action
    diffs: list[FieldDiff] = field(default_factory=list)
    reason: str = ""
    resource: Resource | None = None  # None for deletes of resources gone from the manifests
    live: Any = None  # the kind's own view of the live object (not saved in plan files)
    operations: list[Operation] = field(default_factory=list)
    hazards: list[Hazard] = field(default_factory=list)
    fingerprint: str = ""  # hash of the live state (object + ownership record) the change rests on
    record: dict[str, Any] = field(default_factory=dict)  # kind state the ownership record keeps (known at plan)

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def data_loss(self) -> list[Hazard]:
        return [h for h in self.hazards if h.kind == "data_loss"]


@dataclass
class Plan:
    changes: list[Change]  # in dependency order (deletes in reverse order)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes)

    def counts(self) -> dict[str, int]:
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in ACTIONS}
        counts.update({a: n for a in OWNERSHIP_ACTIONS if (n := sum(1 for c in self.changes if c.action == a))})
        return counts

    @property
    def hazards(self) -> list[tuple[Change, Hazard]]:
        return [(c, h) for c in self.changes for h in c.hazards]
