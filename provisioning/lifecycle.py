"""Ownership, the same for every kind, in one place.

- Who owns a live object: this stack (its marker on the object, or for kinds without a marker slot, this stack's
  ledger record), another stack (its marker, or its ledger record), or nobody we know (unmanaged).
- What the plan may do about it: change only what this stack owns; refuse, at plan time and naming the owner,
  every create/update/replace/delete that would touch another stack's or an unmanaged object, including a
  foreign object that took the place of one this stack created (destroy and removal too, whatever the flags).
- The operations around a kind's own: a create is recorded BEFORE its first request (write-ahead: a run killed
  right after the create leaves an object the ledger knows), every change records its outcome after its
  operations, a delete forgets the record.
- Adoption (`adopt: true` on a resource): an existing object that no stack owns (no marker of any stack, no ledger
  record) becomes this stack's by a ledger record only, marked `adopted`; the object is never written by the
  adoption. Afterwards it is ours while the kind says it is still the recorded object (is_recorded). Without the
  mark the refusal stays; an object another stack owns is refused, naming the owner, mark or not.
- Renames (`moved_from: kind/old`): the record of an object this stack owns is re-keyed to the new name with the
  kind's rename operations (an alias swap for an index), instead of a delete and a create.
- At apply: an "already exists" answer to a create's first request after the client retried a request whose
  answer was lost is recognised as this stack's own earlier attempt (the object now carries our marker or record
  and matches the manifest); ES refusing a fresh create undoes its write-ahead record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError

from provisioning.diffing import spec_hash
from provisioning.kinds import KINDS
from provisioning.kinds.base import NO_SLOT
from provisioning.model import SECRET_MARKER, Change, FieldDiff, Request, Resource, Step
from provisioning.operations import LEARNING_STEPS

LEDGER_SENDS = ("PUT /es-stack-ledger/_doc/*",)
FORGET_SENDS = ("DELETE /es-stack-ledger/_doc/*",)
REFUSED_CREATE = (400, 403, 404, 409)  # ES refused the request itself: nothing of ours exists


@dataclass(frozen=True)
class Owner:
    state: str  # "absent", "ours", "other" (another stack), "unmanaged"
    stack: str | None = None
    what: str = ""  # the kind's description of the live object

    def describe(self) -> str:
        if self.state == "other":
            return f"is owned by stack {self.stack!r}"
        return "was not created by this stack (it carries no ownership marker of it, no ledger records it)"

    def reason(self) -> str:
        return f"owned by stack {self.stack!r}" if self.state == "other" else "no ownership marker, no ledger record"


def owner_of(ctx: Any, kind: str, name: str, live: Any | None,
             desired: dict[str, Any] | None = None) -> Owner:
    if live is None:
        return Owner("absent")
    what = KINDS[kind].describe(live)
    marker = KINDS[kind].marker(live)
    entry = ctx.ledger.entry(kind, name)
    recorded = marker == NO_SLOT and entry is not None and KINDS[kind].is_recorded(live, entry, desired)
    # adopted: no marker of any stack on the object, our record says we adopted it, and it is still that object
    adopted = marker is None and entry is not None and bool(entry.get("adopted")) and \
        KINDS[kind].is_recorded(live, entry, desired)
    if marker == ctx.stack or recorded or adopted:
        return Owner("ours", what=what)
    if marker not in (None, NO_SLOT):
        return Owner("other", marker, what)
    other = ctx.ledger.other_owner(kind, name)
    return Owner("other", other, what) if other else Owner("unmanaged", what=what)


def fingerprint(kind: str, live: Any | None, entry: dict[str, Any] | None) -> str:
    """What a change rests on: the live object as the kind views it, and this stack's record of it."""
    record = {k: v for k, v in (entry or {}).items() if k != "updated_at"} if entry else None
    return spec_hash({"live": KINDS[kind].view(live) if live is not None else None, "record": record})


# ---- plan: refusals --------------------------------------------------------------------------------------------
def refusal_for_declared(ctx: Any, resource: Resource, owner: Owner) -> str | None:
    recorded = ctx.ledger.entry(resource.kind, resource.name) is not None
    if owner.state in ("absent", "ours") or (owner.state == "unmanaged" and resource.adopt and not recorded):
        return None
    if owner.state == "unmanaged" and resource.adopt:  # ours once, replaced by hand since: never re-adopted silently
        return (f"{resource.key} ({resource.source}): {owner.what} named {resource.name} is not the one this stack "
                f"recorded (it was deleted and created again outside this stack); it is not adopted again: delete "
                f"it yourself, or remove this stack's record first (take the resource out of the manifests, apply)")
    if owner.state == "other" and resource.adopt:
        return (f"{resource.key} ({resource.source}): cannot adopt {owner.what} named {resource.name}: it "
                f"{owner.describe()}; an object another stack owns is never adopted (destroy it in stack "
                f"{owner.stack!r}, or let that stack keep it)")
    hint = (f"destroy it in stack {owner.stack!r} first, or declare this resource under another name"
            if owner.state == "other" else
            "mark the resource `adopt: true` to make the existing object this stack's (`invoke import --adopt` "
            "writes such manifests), rename the resource, or delete/rename the existing object yourself (the tool "
            "never adopts or overwrites what it did not create unless told to)")
    return f"{resource.key} ({resource.source}): {owner.what} named {resource.name} already exists and " \
           f"{owner.describe()}; this stack will not change it: {hint}"


def refusal_for_delete(ctx: Any, kind: str, name: str, owner: Owner, why: str) -> str | None:
    if owner.state in ("absent", "ours"):
        return None
    return (f"{kind}/{name}: {why}, but the {kind} now named {name} is not the one this stack created "
            f"({owner.what}: {owner.reason()}), so it will not be deleted, with or without --allow-data-loss; "
            f"delete or rename it yourself if you mean to, then run again (only the ownership record is left to "
            f"remove)")


# ---- plan: adoption and renames ------------------------------------------------------------------------------------
_RECORD_KEYS = ("type", "stack", "kind", "name", "spec_hash", "applied", "protected", "updated_at")


def adoption(ctx: Any, resource: Resource, live: Any, owner: Owner) -> Change | None:
    """The "adopt" change of a declared resource marked `adopt: true` whose object exists and nobody owns: the
    kind's facts (differences, identifying record, what is unverified) and, as its only operation, the ledger
    record (added by wrap). None when there is nothing to adopt (absent, or ours already)."""
    if not resource.adopt or owner.state != "unmanaged":
        return None
    change = KINDS[resource.kind].adopt(resource, live, ctx)
    if change.operations:  # pragma: no cover - a kind's adopt exposes facts only
        raise AssertionError(f"{resource.key}: adoption must not write the object")
    change.action, change.record = "adopt", {**change.record, "adopted": True}
    change.reason = f"adopt {owner.what} no stack owns (recorded in the ledger; the object is not written): " \
                    f"{change.reason}"
    return change


def move(ctx: Any, resource: Resource, live: dict[str, Any]) -> tuple[Change | None, str | None]:
    """(the "move" change, or None; a refusal, or None) for a resource declaring `moved_from: kind/old`. Nothing
    to move when this stack owns no record of the old name (already moved, or never owned): plain planning."""
    if not resource.moved_from:
        return None, None
    old_kind, _, old_name = resource.moved_from.partition("/")
    where = f"{resource.key} ({resource.source})"
    if old_kind != resource.kind:
        return None, f"{where}: moved_from {resource.moved_from} names another kind; a move keeps the kind"
    old_entry = ctx.ledger.entry(resource.kind, old_name)
    if old_entry is None or ctx.ledger.entry(resource.kind, resource.name) is not None:
        return None, None
    objects = live.get(resource.kind, {})
    if resource.name in objects:
        if owner_of(ctx, resource.kind, resource.name, objects[resource.name], resource.spec).state == "ours":
            return None, None  # a move stopped after its rename: the new name is ours, its record is written next
        return None, (f"{where}: cannot move {resource.moved_from} to {resource.name}: a "
                      f"{KINDS[resource.kind].describe(objects[resource.name])} of that name already exists")
    old_live = objects.get(old_name)
    owner = owner_of(ctx, resource.kind, old_name, old_live)
    if old_live is None or owner.state != "ours":
        return None, None  # gone, or not ours any more: the old record is deleted, the new name planned afresh
    change = KINDS[resource.kind].rename(resource, old_name, old_live, old_entry, ctx)
    kept = {k: v for k, v in old_entry.items() if k not in _RECORD_KEYS}
    change.action, change.record = "move", {**kept, **change.record}
    change.operations = [*change.operations, Step(
        "forget_ownership", {"kind": resource.kind, "name": old_name}, sends=FORGET_SENDS,
        summary=f"remove the ownership record of {resource.moved_from} (re-keyed to {resource.key})")]
    return change, None


# ---- plan: the operations around a kind's own ----------------------------------------------------------------------
def _record_step(ctx: Any, change: Change, resource: Resource) -> Step:
    return Step("record_ownership", {"kind": change.kind, "name": change.name, "spec": resource.spec,
                                     "protected": bool(resource.protected), "extra": dict(change.record)},
                sends=LEDGER_SENDS, summary=f"record {change.key} as owned by stack {ctx.stack!r}")


def _forget_step(ctx: Any, change: Change) -> Step:
    return Step("forget_ownership", {"kind": change.kind, "name": change.name}, sends=FORGET_SENDS,
                summary=f"remove the ownership record of {change.key}")


def _unplanned_secret(node: Any) -> bool:
    """A request body holding a secret marker without a hash (the secret was not set when it was planned)."""
    if isinstance(node, Request):
        return _unplanned_secret(node.body)
    if isinstance(node, dict):
        return (SECRET_MARKER in node and not node.get("hash")) or any(_unplanned_secret(v) for v in node.values())
    if isinstance(node, list):
        return any(_unplanned_secret(v) for v in node)
    return False


def wrap(ctx: Any, change: Change, entry: dict[str, Any] | None) -> Change:
    """Adds the ledger operations to a kind's change; turns a record-only difference into an update."""
    resource = change.resource
    if change.action == "delete":
        change.operations = [*change.operations, _forget_step(ctx, change)]
        return change
    assert resource is not None
    if change.action == "noop":
        if entry is None:  # ours by the marker on the object, yet unrecorded: a run stopped before its record
            change.action, change.reason = "update", "the object is ours but its ownership record is missing"
            change.diffs.append(FieldDiff("ownership_record", None, "recorded"))
        elif bool(entry.get("protected", False)) != bool(resource.protected):
            change.action = "update"
            change.reason = "only the protection flag of the ownership record changes"
            change.diffs.append(FieldDiff("protected", bool(entry.get("protected", False)), resource.protected))
        else:
            return change
    record = _record_step(ctx, change, resource)
    if change.action == "create":
        # write-ahead; a second record keeps what a learning step learnt (an artifact checksum)
        # (or the hash of a secret planned without it: `plan` needs no write-only secret)
        learns = any((isinstance(op, Step) and op.name in LEARNING_STEPS) or _unplanned_secret(op)
                     for op in change.operations)
        learnt = [record] if learns else []
        change.operations = [record, *change.operations, *learnt]
    else:
        change.operations = [*change.operations, record]
    return change


# ---- apply: the ledger steps ---------------------------------------------------------------------------------------
def record_ownership(run: Any, *, kind: str, name: str, spec: dict[str, Any], protected: bool,
                     extra: dict[str, Any]) -> None:
    entry = run.ctx.ledger.entry(kind, name) or {}
    kept = {k: v for k, v in entry.items() if k not in ("type", "stack", "kind", "name", "spec_hash", "applied",
                                                        "protected", "updated_at")}
    run.ctx.ledger.record(kind, name, spec_hash=spec_hash(spec), applied=spec, protected=protected,
                          **{**kept, **extra, **run.notes})


def forget_ownership(run: Any, *, kind: str, name: str) -> None:
    run.ctx.ledger.forget(kind, name)


# ---- apply: failures of a create --------------------------------------------------------------------------------
def first_request(change: Change) -> Request | None:
    """The request that creates the object: a create's first operation after its write-ahead record."""
    ops = [op for op in change.operations if not (isinstance(op, Step) and op.name == "record_ownership")]
    return ops[0] if ops and isinstance(ops[0], Request) else None


def after_failed_create(ctx: Any, change: Change, exc: ApiError, had_entry: bool) -> bool:
    """A create's creating request failed. True when the object is there anyway, ours and as planned: the client
    retried a request whose answer was lost (ES then answers "already exists", or another refusal of the repeat),
    or an earlier run's create timed out on our side and still succeeded; the change goes on. When the object is
    not there and ES refused the request itself, the write-ahead record must not make the stack own a ghost."""
    if change.action != "create" or change.resource is None:
        return False
    kind = KINDS[change.kind]
    live = kind.read(ctx, [change.resource], {}).get(change.name)
    if live is None:
        if not had_entry and exc.meta.status in REFUSED_CREATE:
            ctx.ledger.forget(change.kind, change.name)
        return False
    if owner_of(ctx, change.kind, change.name, live, change.resource.spec).state != "ours":
        return False
    return kind.diff(change.resource, live, ctx.ledger.entry(change.kind, change.name), ctx).action == "noop"
