"""make_plan / destroy_plan: one ledger read, one batched read per kind, a pure diff per resource, waves in
dependency order. The only place (with the applier) that loops over kinds; it never names one.

Requests per plan: 1 (ledger) + a fixed number per kind present, whatever the number of resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError

from provisioning.errors import ClusterError, ManifestError, Problem, Refused, es_reason
from provisioning.kinds import KINDS
from provisioning.model import Change, FieldDiff, Plan, Resource, SourceLocation

KIND_ORDER = {name: i for i, name in enumerate(KINDS)}


@dataclass
class StackPlan(Plan):
    """A Plan plus what the applier needs: waves of independent changes and the resources it was made from."""

    waves: list[list[Change]] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    destroy: bool = False
    stack: str = "default"


def api_error(exc: ApiError, *, resource: str | None = None, location: str | None = None,
              doing: str = "") -> ClusterError:
    """ES's own error type and reason, with the resource and its manifest location (never a request body)."""
    err = exc.body.get("error") if isinstance(exc.body, dict) else None
    es_type = err.get("type") if isinstance(err, dict) else None
    caused = err.get("caused_by", {}).get("reason") if isinstance(err, dict) and isinstance(
        err.get("caused_by"), dict) else None
    message = f"{doing + ': ' if doing else ''}Elasticsearch answered {exc.meta.status}"
    message += (f" {es_type}" if es_type else "") + f": {es_reason(exc)}"
    if caused:
        message += f" (caused by: {caused})"
    return ClusterError(message, status=exc.meta.status, es_type=es_type, resource=resource, location=location)


def _read_all(resources: list[Resource], ctx: Any) -> dict[str, dict[str, Any]]:
    live: dict[str, dict[str, Any]] = {}
    for kind_name, kind in KINDS.items():
        declared = [r for r in resources if r.kind == kind_name]
        owned = ctx.ledger.owned(kind_name)
        if not declared and not owned:
            continue
        try:
            live[kind_name] = kind.read(ctx, declared, owned)
        except ApiError as exc:
            raise api_error(exc, resource=f"{kind_name} (reading)", doing=f"reading the live {kind_name} objects") \
                from exc
    return live


def _ledger_resource(entry: dict[str, Any]) -> Resource:
    """A resource rebuilt from its last-applied spec: lets deletes of undeclared resources be ordered too."""
    return Resource(entry["kind"], entry["name"], dict(entry.get("applied") or {}), SourceLocation("(ledger)"))


def _needs(resource: Resource) -> list[str]:
    """Explicit depends_on plus the references the kind infers from the spec ("kind/name"), without repeats."""
    return list(dict.fromkeys(list(resource.depends_on) + KINDS[resource.kind].references(resource)))


def _dependencies(resources: dict[str, Resource]) -> dict[str, list[str]]:
    """What each resource needs, restricted to the resources in the graph."""
    return {key: [d for d in _needs(r) if d in resources and d != key] for key, r in resources.items()}


def _levels(resources: dict[str, Resource], deps: dict[str, list[str]]) -> dict[str, int]:
    """Dependency depth of each resource (0 = depends on nothing declared). Cycles are manifest errors."""
    levels: dict[str, int] = {}
    visiting: set[str] = set()

    def level(key: str) -> int:
        if key in levels:
            return levels[key]
        if key in visiting:
            r = resources[key]
            raise ManifestError([Problem(r.source.file, r.source.line, f"dependency cycle through {key}")])
        visiting.add(key)
        levels[key] = 1 + max((level(d) for d in deps[key]), default=-1)
        visiting.discard(key)
        return levels[key]

    for key in resources:
        level(key)
    return levels


def _sort_key(change: Change, levels: dict[str, int]) -> tuple[int, int, str]:
    return levels.get(change.key, 0), KIND_ORDER.get(change.kind, 99), change.name


def _waves(changes: list[Change], levels: dict[str, int], *, reverse: bool) -> list[list[Change]]:
    active = [c for c in changes if c.action != "noop"]
    by_level: dict[int, list[Change]] = {}
    for change in active:
        by_level.setdefault(levels.get(change.key, 0), []).append(change)
    order = sorted(by_level, reverse=reverse)
    return [sorted(by_level[lvl], key=lambda c: (KIND_ORDER.get(c.kind, 99), c.name)) for lvl in order]


PROTECTED_PATH = "protected"  # a FieldDiff on this path alone is applied to the ownership record only


def _protection_change(change: Change, ctx: Any) -> Change:
    """`protected` lives in the ledger record: flipping it on an otherwise unchanged resource is an update of
    the record alone (so that unprotecting takes one apply, not a record that lags behind the manifest)."""
    entry = ctx.ledger.entry(change.kind, change.name)
    if change.action != "noop" or change.resource is None or entry is None:
        return change
    before, after = bool(entry.get("protected", False)), bool(change.resource.protected)
    if before == after:
        return change
    return Change(change.kind, change.name, "update", [FieldDiff(PROTECTED_PATH, before, after)],
                  reason="only the protection flag of the ownership record changes", resource=change.resource,
                  live=change.live)


def _protection_refusal(change: Change, ctx: Any) -> str | None:
    entry = ctx.ledger.entry(change.kind, change.name) or {}
    protected = change.resource.protected if change.resource is not None else entry.get("protected", False)
    if not protected or change.action not in ("delete", "replace"):
        return None
    if change.resource is not None:
        return (f"{change.key} ({change.resource.source}) is protected, so it cannot be "
                f"{'deleted' if change.action == 'delete' else 'replaced'}; set `protected: false` in its manifest "
                f"to allow it")
    return (f"{change.key} is protected and no longer declared; declare it again with `protected: false`, apply, "
            f"then remove it")


def _cascade_replacements(changes: list[Change], declared: dict[str, Resource]) -> list[Change]:
    """A replaced resource may take its dependants with it. The dependant's kind decides through an optional hook
    `dependency_replaced(change, dependency) -> Change` (e.g. an endpoint serving a replaced model is recreated,
    since ES does not redeploy it); repeated until stable so replacements cascade transitively."""
    by_key = {c.key: c for c in changes}
    changed = True
    while changed:
        changed = False
        for key, change in list(by_key.items()):
            resource, hook = declared.get(key), getattr(KINDS[change.kind], "dependency_replaced", None)
            if resource is None or hook is None or change.action in ("create", "replace", "delete"):
                continue
            for dep_key in _needs(resource):
                dependency = by_key.get(dep_key)
                if dependency is not None and dependency.action == "replace":
                    updated = hook(change, dependency)
                    if updated.action != change.action:
                        by_key[key], changed = updated, True
                        break
    return [by_key[c.key] for c in changes]


def make_plan(resources: list[Resource], ctx: Any, *, destroy: bool = False) -> StackPlan:
    """Desired (resources) vs live, as ordered changes. With destroy=True: delete everything the stack owns."""
    ctx.ledger.load()
    ctx.ledger.declare(resources)
    live = _read_all(resources, ctx)
    declared = {r.key: r for r in resources}
    errors: list[str] = []
    changes: list[Change] = []
    if not destroy:
        for resource in resources:
            try:
                changes.append(KINDS[resource.kind].diff(resource, live.get(resource.kind, {}).get(resource.name)))
            except Refused as exc:
                errors.append(str(exc))
        changes = _cascade_replacements(changes, declared)
        changes = [_protection_change(c, ctx) for c in changes]
    owned_keys = []
    for kind_name in KINDS:
        for name in sorted(ctx.ledger.owned(kind_name)):
            key = f"{kind_name}/{name}"
            if destroy or key not in declared:
                owned_keys.append(key)
                obj = live.get(kind_name, {}).get(name)
                reason = "destroy" if destroy else "no longer declared in the manifests"
                if obj is None:
                    reason += "; already gone from the cluster, only the ownership record is removed"
                changes.append(Change(kind_name, name, "delete", reason=reason, resource=declared.get(key),
                                      live=obj))
    for change in changes:
        refusal = _protection_refusal(change, ctx)
        if refusal:
            errors.append(refusal)
        preflight = getattr(KINDS[change.kind], "preflight", None)
        if preflight is not None and change.action != "noop":
            errors += preflight(ctx, change)
    if errors:
        raise Refused("the plan cannot be carried out:\n  - " + "\n  - ".join(errors))

    graph = dict(declared)
    for key in owned_keys:
        if key not in graph:
            kind_name, _, name = key.partition("/")
            graph[key] = _ledger_resource(ctx.ledger.entry(kind_name, name) or {"kind": kind_name, "name": name})
    deps = _dependencies(graph)
    levels = _levels(graph, deps)
    forward = [c for c in changes if c.action != "delete"]
    deletes = [c for c in changes if c.action == "delete"]
    forward.sort(key=lambda c: _sort_key(c, levels))
    deletes.sort(key=lambda c: _sort_key(c, levels), reverse=True)
    waves = _waves(forward, levels, reverse=False) + _waves(deletes, levels, reverse=True)
    return StackPlan(changes=forward + deletes, waves=waves, resources=list(resources), destroy=destroy,
                     stack=ctx.stack)


def destroy_plan(resources: list[Resource], ctx: Any) -> StackPlan:
    """Deletes for everything the stack owns, in reverse dependency order. Unowned objects are never touched."""
    return make_plan(resources, ctx, destroy=True)
