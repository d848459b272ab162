"""The one small interface every resource kind implements. The engine knows kinds only through it.

A kind module reads in this order: schema -> references -> read (batched) -> diff (pure) -> writes.

Optional hooks, looked up with getattr by the engine: `preflight(ctx, change) -> list[str]` (refusals known at plan
time), `dependency_replaced(change, dependency) -> Change` (planner cascade) and
`after_apply(ctx, resource, *, manual) -> result | None` (run after every change, e.g. checks).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from provisioning.errors import Problem
    from provisioning.model import Change, Resource

SCHEMA_DIR = Path(__file__).parent / "schemas"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind's `spec`, kept as data in kinds/schemas/<kind>.json."""
    return json.loads((SCHEMA_DIR / f"{kind}.json").read_text())


class Kind(Protocol):
    name: ClassVar[str]

    def default_name(self, spec: dict[str, Any]) -> str | None:
        """The name when a manifest leaves it out (e.g. derived from the spec), or None to require one."""

    def references(self, resource: Resource) -> list[str]:
        """Resources this one needs first, inferred from its spec ("kind/name"), beside explicit depends_on."""

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        """Checks the schema cannot express (names, the task type of a referenced model, ...). No I/O."""

    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Any]:
        """Live state of the declared and owned objects of this kind, by name, in a FIXED number of requests."""

    def diff(self, resource: Resource, live: Any | None) -> Change:
        """Pure: desired vs live. Compares only what the user declared, normalised as ES reports it."""

    def create(self, ctx: Any, change: Change) -> None: ...

    def update(self, ctx: Any, change: Change) -> None: ...

    def replace(self, ctx: Any, change: Change) -> None: ...

    def delete(self, ctx: Any, change: Change) -> None: ...
