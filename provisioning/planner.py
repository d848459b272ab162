"""make_plan / destroy_plan: one ledger read, one batched read per kind, a pure diff per resource wrapped by the
lifecycle (ownership), hazards, fingerprints, and waves in dependency order. The only place (with the applier)
that loops over kinds; it never names one.

Requests per plan: 1 (ledger) + a fixed number per kind present, whatever the number of resources.
Destructive changes are planned and shown (hazards), never plan errors; what is refused at plan time is what no
flag can allow: objects this stack does not own, protected resources, a cluster that cannot take a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError

from provisioning import compat, lifecycle, versions
from provisioning.errors import ManifestError, Problem, Refused, api_error
from provisioning.es_validation import missing_in_cluster, unresolved_references
from provisioning.kinds import KINDS
from provisioning.licence import licence_warnings
from provisioning.model import Change, Plan, Resource, SourceLocation
from provisioning.preflight import server_preflight
from provisioning.read_batch import batched_reads

KIND_ORDER = {name: i for i, name in enumerate(KINDS)}


@dataclass
class StackPlan(Plan):
    """A Plan plus what the applier needs: waves of independent changes, the resources it was made from, and what
    ties it to one cluster and one state (for saved plans)."""

    waves: list[list[Change]] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    destroy: bool = False
    stack: str = "default"
    allow_data_loss: bool = False
    cluster: dict[str, Any] = field(default_factory=dict)
    saved: bool = False  # loaded from a plan file: the cluster it was made against is checked too
    warnings: list[str] = field(default_factory=list)  # shown with the plan, before any write (e.g. licences)

    @property
    def checks(self) -> list[Resource]:
        return [r for r in self.resources if r.kind not in KINDS]


def _read_all(resources: list[Resource], ctx: Any) -> dict[str, dict[str, Any]]:
    live: dict[str, dict[str, Any]] = {}
    reading = "the cluster"
    try:
        with batched_reads(ctx):  # the kinds' searches (document counts) go in ONE _msearch after their reads
            for kind_name, kind in KINDS.items():
                declared = [r for r in resources if r.kind == kind_name]
                owned = ctx.ledger.owned(kind_name)
                if not declared and not owned:
                    continue
                reading = kind_name
                live[kind_name] = kind.read(ctx, declared, owned)
            reading = "index and documents"
    except ApiError as exc:
        raise api_error(exc, resource=f"{reading} (reading)", doing=f"reading the live {reading} objects") from exc
    return live


def _ledger_resource(entry: dict[str, Any]) -> Resource:
    """A resource rebuilt from its last-applied spec: lets deletes of undeclared resources be ordered too."""
    return Resource(entry["kind"], entry["name"], dict(entry.get("applied") or {}), SourceLocation("(ledger)"))


def _needs(resource: Resource) -> list[str]:
    """Explicit depends_on plus the references the kind infers from the spec ("kind/name"), without repeats."""
    return list(dict.fromkeys(list(resource.depends_on) + KINDS[resource.kind].references(resource)))


def _levels(resources: dict[str, Resource]) -> dict[str, int]:
    """Dependency depth of each resource (0 = depends on nothing declared). Cycles are manifest errors."""
    deps = {key: [d for d in _needs(r) if d in resources and d != key] for key, r in resources.items()}
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


def _waves(changes: list[Change], levels: dict[str, int], *, reverse: bool) -> list[list[Change]]:
    by_level: dict[int, list[Change]] = {}
    for change in changes:
        if change.action != "noop":
            by_level.setdefault(levels.get(change.key, 0), []).append(change)
    return [sorted(by_level[lvl], key=lambda c: (KIND_ORDER.get(c.kind, 99), c.name))
            for lvl in sorted(by_level, reverse=reverse)]


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


def _cascade(changes: list[Change], graph: dict[str, Resource], ctx: Any) -> list[Change]:
    """A change may change its dependants' plans (kind hook dependency_changed); repeated until stable, so
    replacements cascade transitively."""
    by_key = {c.key: c for c in changes}
    changed = True
    while changed:
        changed = False
        for key, change in list(by_key.items()):
            resource = graph.get(key)
            if resource is None:
                continue
            for dep_key in _needs(resource):
                dependency = by_key.get(dep_key)
                if dependency is None or dependency.action == "noop":
                    continue
                before = (change.action, len(change.operations))
                by_key[key] = change = KINDS[change.kind].dependency_changed(change, dependency, ctx)
                if (change.action, len(change.operations)) != before:
                    changed = True
    return [by_key[c.key] for c in changes]


def _server_preflight(resources: list[Resource], changes: list[Change], live: dict[str, Any], ctx: Any) -> None:
    """What only Elasticsearch knows, asked without writing: the body of every index about to be created or changed
    (POST _index_template/_simulate) and, when the plan will write, the queries of the checks that run after it
    (_validate/query). A no-op plan asks nothing: its request count stays fixed."""
    writing = [c for c in changes if c.action != "noop"]
    if not writing:
        return
    changed = {c.key for c in writing if c.action in ("create", "update", "replace")}
    asked = [r for r in resources if r.key in changed and r.kind == "index" or r.kind not in KINDS]
    problems = server_preflight(ctx.client, asked, set(live.get("index", {})))
    if problems:
        raise ManifestError(problems)


def make_plan(resources: list[Resource], ctx: Any, *, destroy: bool = False) -> StackPlan:
    """Desired (resources) vs live, as ordered changes with their operations. destroy=True: delete everything the
    stack owns. Read-only."""
    managed = [r for r in resources if r.kind in KINDS]
    ctx.ledger.load([r.name for r in managed])
    ctx.ledger.declare(managed)
    # references to objects no manifest declares must exist in the cluster: they ride along in the batched reads
    references = unresolved_references(resources)
    probes = {(kind, name): Resource(kind, name, {}, SourceLocation("(reference)"))
              for _, _, kind, name, _ in references if kind in KINDS}
    live = _read_all(managed + list(probes.values()), ctx)
    missing = missing_in_cluster(references, {kind: set(live.get(kind, {})) for kind, _ in probes})
    if missing:
        raise ManifestError(missing)
    declared = {r.key: r for r in managed}
    errors: list[str] = []
    changes: list[Change] = []
    moved: set[str] = set()  # old keys re-keyed by a move: not deleted
    if not destroy:
        for resource in managed:
            obj = live.get(resource.kind, {}).get(resource.name)
            entry = ctx.ledger.entry(resource.kind, resource.name)
            try:
                change, refusal = lifecycle.move(ctx, resource, live)
                if change is None and refusal is None:
                    owner = lifecycle.owner_of(ctx, resource.kind, resource.name, obj, resource.spec)
                    refusal = lifecycle.refusal_for_declared(ctx, resource, owner)
                    if refusal is None:
                        change = lifecycle.adoption(ctx, resource, obj, owner) or \
                            KINDS[resource.kind].diff(resource, obj, entry, ctx)
            except Refused as exc:
                change, refusal = None, str(exc)
            if refusal or change is None:
                errors.append(refusal or f"{resource.key}: nothing planned")
                continue
            if change.action == "move":
                moved.add(str(resource.moved_from))
            change.fingerprint = lifecycle.fingerprint(resource.kind, obj, entry)
            changes.append(change)
    graph = dict(declared)
    for kind_name in KINDS:
        for name in sorted(ctx.ledger.owned(kind_name)):
            key = f"{kind_name}/{name}"
            if not destroy and (key in declared or key in moved):
                continue
            entry = ctx.ledger.entry(kind_name, name) or {"kind": kind_name, "name": name}
            graph.setdefault(key, _ledger_resource(entry))
            obj = live.get(kind_name, {}).get(name)
            why = "destroy" if destroy else "no longer declared in the manifests"
            refusal = lifecycle.refusal_for_delete(ctx, kind_name, name, lifecycle.owner_of(ctx, kind_name, name, obj),
                                                   why)
            if refusal:
                errors.append(refusal)
                continue
            change = KINDS[kind_name].delete(name, obj, entry, ctx)
            change.resource, change.reason = declared.get(key), why if obj is not None else \
                f"{why}; already gone from the cluster, only the ownership record is removed"
            change.fingerprint = lifecycle.fingerprint(kind_name, obj, entry)
            changes.append(change)
    changes = _cascade(changes, graph, ctx)
    for change in changes:
        entry = ctx.ledger.entry(change.kind, change.name)
        lifecycle.wrap(ctx, change, entry)
        refusal = _protection_refusal(change, ctx)
        if refusal:
            errors.append(refusal)
        if change.action != "noop":
            errors += KINDS[change.kind].preflight(ctx, change)
    if errors:
        raise Refused("the plan cannot be carried out:\n  - " + "\n  - ".join(errors))
    _server_preflight(resources, changes, live, ctx)

    levels = _levels(graph)
    order = lambda c: (levels.get(c.key, 0), KIND_ORDER.get(c.kind, 99), c.name)  # noqa: E731
    forward = sorted((c for c in changes if c.action != "delete"), key=order)
    deletes = sorted((c for c in changes if c.action == "delete"), key=order, reverse=True)
    waves = _waves(forward, levels, reverse=False) + _waves(deletes, levels, reverse=True)
    plan = StackPlan(changes=forward + deletes, waves=waves, resources=list(resources), destroy=destroy,
                     stack=ctx.stack, allow_data_loss=bool(ctx.options.allow_data_loss),
                     cluster={"ledger_id": ctx.ledger.identity})
    if not destroy:
        plan.warnings = _version_gates(plan, ctx) + licence_warnings(plan, ctx.client)
    return plan


def _version_gates(plan: StackPlan, ctx: Any) -> list[str]:
    """Refuse what the cluster's version does not have, naming the version that added it (provisioning/versions.py);
    returns notes on requests adapted to an older version."""
    version = compat.known_version(ctx.client) or (compat.cluster_version(ctx.client) if plan.has_changes else None)
    refusals, notes = versions.check_plan(plan, version)
    if refusals:
        raise Refused("the plan uses what this cluster's Elasticsearch version does not have; nothing was written:"
                      "\n  - " + "\n  - ".join(refusals))
    return notes


def destroy_plan(resources: list[Resource], ctx: Any) -> StackPlan:
    """Deletes for everything the stack owns, in reverse dependency order. Unowned objects are never touched."""
    return make_plan(resources, ctx, destroy=True)
