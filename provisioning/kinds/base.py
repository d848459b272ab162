"""The one small interface every resource kind implements. The engine knows kinds only through it.

A kind module holds its schema (kinds/schemas/<kind>.json), its batched read, its pure diff producing the
operations apply will run, and its Elasticsearch facts. Ownership (records, markers, refusals, earlier attempts)
is NOT a kind's business: provisioning/lifecycle.py wraps every kind's changes with it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    from provisioning.errors import Problem
    from provisioning.model import Change, Resource

SCHEMA_DIR = Path(__file__).parent / "schemas"

# Kind.marker() answers for kinds whose objects have no place to record their owner (inference endpoints,
# documents): the ownership ledger is then the only record.
NO_SLOT = "(no marker slot)"


@cache
def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind's `spec`, kept as data in kinds/schemas/<kind>.json."""
    return json.loads((SCHEMA_DIR / f"{kind}.json").read_text())


Live = TypeVar("Live")  # each kind's own typed view of a live object (IndexLive, ModelLive, ...)


class Kind(Protocol[Live]):
    """Every method is part of the interface (the engine calls each of them for every kind); none is optional."""

    name: ClassVar[str]

    # ---- manifest side (no I/O) ----
    def default_name(self, spec: dict[str, Any]) -> str | None:
        """The name when a manifest leaves it out (e.g. derived from the spec), or None to require one."""

    def references(self, resource: Resource) -> list[str]:
        """Resources this one needs first, inferred from its spec ("kind/name"), beside explicit depends_on."""

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        """Checks the schema cannot express (names, the task type of a referenced model, ...). No I/O."""

    # ---- cluster side ----
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Live]:
        """Live state of the declared and owned objects of this kind, by name, in a FIXED number of requests.
        An object that does not exist has no entry."""

    def marker(self, live: Live) -> str | None:
        """The stack recorded ON the live object (None: it carries no marker of ours; NO_SLOT: the kind has no
        place for one)."""

    def is_recorded(self, live: Live, entry: dict[str, Any], desired: dict[str, Any] | None) -> bool:
        """For kinds without a marker slot: whether the live object is the one the ownership record describes
        (not another object that took its name after it was deleted by hand)."""

    def describe(self, live: Live) -> str:
        """What the live object is, for messages ("an alias over index movies-000001")."""

    def view(self, live: Live) -> Any:
        """The part of the live state a plan rests on (JSON): a saved plan is refused when it changed. Leaves out
        what moves on its own (document counts, allocation progress)."""

    # ---- planning (pure) ----
    def diff(self, resource: Resource, live: Live | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        """Desired vs live as a create, update, replace or noop Change carrying its operations and hazards.
        `entry` is this stack's record of the object (its last-applied spec and state), None if it has none."""

    def delete(self, name: str, live: Live | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        """The Change that removes a live object this stack owns (live None: already gone)."""

    def dependency_changed(self, change: Change, dependency: Change, ctx: Any) -> Change:
        """A change of something this resource needs may change its own plan (an endpoint serving a replaced
        model is recreated; documents of a deleted index need no deletes). Return the change, adjusted or not."""

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        """Refusals known at plan time that need the cluster's facts (e.g. ML capacity)."""

    # ---- facts for the lifecycle's ownership rules (adoption, renames); the lifecycle decides, never the kind ----
    def adopt(self, resource: Resource, live: Live, ctx: Any) -> Change:
        """What adopting this existing object means, as facts: an "adopt" Change WITHOUT operations (adopting never
        writes the object) carrying the differences from the manifest (planned normally once adopted), the `record`
        that identifies the object later (is_recorded compares it) and a reason saying what is left unverified.
        Raises Refused when the kind cannot be adopted."""

    def rename(self, resource: Resource, old_name: str, live: Live, entry: dict[str, Any], ctx: Any) -> Change:
        """The operations that give the owned object `old_name` the resource's name without replacing it, as a
        "move" Change (and its `record`). Raises Refused when the kind cannot be renamed in place."""
