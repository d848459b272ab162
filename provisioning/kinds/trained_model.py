"""Kind `trained_model`: a Hugging Face model traced by eland and uploaded, optionally with a deployment.

read  = ONE GET _ml/trained_models/<id1*,id2*,...> plus ONE GET .../_stats, whatever the number of models.
diff  = pure: the declared source/revision/task type against what the upload recorded in the model's metadata
        (no tracing, no torch); deployment settings against `_stats`.
apply = trace (or reuse the cached artifact), upload concurrently, start/update the deployment, wait, probe.
Heavy imports (torch, transformers, eland.ml) happen only inside create/update/replace when a model must be traced.
"""

from __future__ import annotations

import re
from typing import Any

from provisioning.errors import Problem, Refused
from provisioning.model import Change, FieldDiff, Resource
from provisioning.model_import import deployment as dep
from provisioning.model_import import importer

KIND = "trained_model"
# A model traced by another eland/torch version is still the same model: by default an upgrade of those libraries
# does not re-upload every model (and recreate every endpoint). True compares the whole recorded cache key instead.
REPLACE_ON_LIBRARY_UPGRADE = False


def eland_model_id(hub_id: str) -> str:
    """eland's derivation of a model id from a hub id (eland/ml/pytorch/transformers.py `elasticsearch_model_id`):
    whitespace, "/" and "\\" become "__", lower case, the last 64 characters, no leading "__"."""
    return re.sub(r"[\s\\/]", "__", hub_id).lower()[-64:].removeprefix("__")


def _wildcards(names: list[str]) -> str:
    """`a*,b*`: with allow_no_match=true ES tolerates wildcards that match nothing but NOT missing concrete ids
    (ExpandedIdsMatcher: concrete ids are always required), so a batched read of possibly-missing models uses a
    wildcard per id and keeps exact matches only."""
    return ",".join(f"{n}*" for n in sorted(names))


class TrainedModelKind:
    name = KIND

    def default_name(self, spec: dict[str, Any]) -> str | None:
        hub = (spec.get("source") or {}).get("hub")
        return eland_model_id(hub) if isinstance(hub, str) else None

    def references(self, resource: Resource) -> list[str]:
        return []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        problems: list[Problem] = []
        spec = resource.spec

        def problem(path: str, message: str, hint: str = "") -> None:
            where = resource.line_of(path)
            problems.append(Problem(where.file, where.line, f"{resource.key}: {message}", hint))

        source = importer.source_of(resource)
        if source.path is not None and not (source.path / "config.json").is_file():
            problem("spec.source.path", f"{source.path} is not a Hugging Face model directory (no config.json)",
                    "point source.path at a folder saved with save_pretrained(), or use source.hub")
        if source.revision and not source.hub:
            problem("spec.source.revision", "revision applies to hub models only (source.hub)")
        deployment = spec.get("deployment") or {}
        adaptive = deployment.get("adaptive_allocations") or {}
        if adaptive.get("enabled") and "number_of_allocations" in deployment:
            problem("spec.deployment", "number_of_allocations and adaptive_allocations exclude each other",
                    "ES rejects both in one _start request; keep adaptive_allocations.min/max only")
        if deployment.get("priority") == "low" and (deployment.get("number_of_allocations", 1) > 1
                                                    or deployment.get("threads_per_allocation", 1) > 1):
            problem("spec.deployment.priority",
                    "a low priority deployment must have 1 allocation of 1 thread (ES: [number_of_allocations] "
                    "must be 1 when [priority] is low)")
        from provisioning.names import DEPLOYMENT_ID, TRAINED_MODEL_ID, name_problems  # ES rules (MlStrings)

        problems += name_problems(resource, TRAINED_MODEL_ID)
        if isinstance(deployment.get("deployment_id"), str):
            problems += name_problems(resource, DEPLOYMENT_ID, deployment["deployment_id"],
                                      "spec.deployment.deployment_id")
        return problems

    # ---- read / diff ------------------------------------------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Any]:
        names = sorted({r.name for r in resources} | set(owned))
        if not names:
            return {}
        client = ctx.client
        ids = _wildcards(names)
        configs = client.ml.get_trained_models(model_id=ids, allow_no_match=True, size=10_000)
        stats = client.ml.get_trained_models_stats(model_id=ids, allow_no_match=True, size=10_000)
        deployments: dict[str, dict[str, Any]] = {}
        for entry in stats.body.get("trained_model_stats", []):
            if entry.get("deployment_stats"):
                deployments.setdefault(entry["model_id"], {})[entry["deployment_stats"]["deployment_id"]] = \
                    entry["deployment_stats"]
        live: dict[str, Any] = {}
        wanted = set(names)
        for config in configs.body.get("trained_model_configs", []):
            model_id = config.get("model_id")
            if model_id not in wanted:
                continue
            managed_by, stack = importer.owner(config)
            live[model_id] = {
                "config": config,
                "recorded": importer.recorded(config),
                "ours": managed_by == importer.MANAGED_BY and stack == ctx.stack,
                "foreign_stack": stack if managed_by == importer.MANAGED_BY and stack != ctx.stack else None,
                "ledger": owned.get(model_id),
                "deployments": deployments.get(model_id, {}),
            }
        return live

    def diff(self, resource: Resource, live: Any | None) -> Change:
        change = Change(KIND, resource.name, "noop", resource=resource, live=live)
        source = importer.source_of(resource)
        try:
            identity = source.identity()
        except FileNotFoundError as exc:
            raise Refused(f"{resource.key} ({resource.source}): {exc}") from exc
        if live is None:
            change.action, change.reason = "create", f"upload {source.describe()} ({source.task_type})"
            return change
        record = live["recorded"]
        if not record:
            change.action = "replace"
            change.reason = "exists but was not uploaded by this tool (no provenance in its metadata)"
            return change
        for key in ("source", "revision", "task_type"):
            if record.get(key) != identity.get(key):
                change.diffs.append(FieldDiff(key, record.get(key), identity.get(key), forces_replacement=True))
        if REPLACE_ON_LIBRARY_UPGRADE and not change.diffs and record.get("cache_key") != source.cache_key(identity):
            change.diffs.append(FieldDiff("cache_key", record.get("cache_key"), source.cache_key(identity),
                                          forces_replacement=True))
        if change.diffs:
            change.action = "replace"
            change.reason = "a different model: re-upload it (the endpoints serving it are recreated)"
            return change
        entry = live.get("ledger") or {}
        if live["ours"] and not (entry.get("upload_complete")
                                 and importer.same_identity(entry.get("identity") or {}, identity)):
            change.action = "update"
            change.reason = "the last upload did not finish (interrupted); it is resumed"
            change.diffs.append(FieldDiff("definition", "incomplete", "complete"))
        diffs, restart = self._deployment_diffs(resource, live)
        change.diffs += diffs
        if diffs and change.action == "noop":
            change.action = "update"
            change.reason = ("deployment restarted (stop + start): " + ", ".join(restart) + " cannot change in place"
                             if restart else "deployment started, stopped or updated in place (_update)")
        return change

    def _deployment_diffs(self, resource: Resource, live: dict[str, Any]) -> tuple[list[FieldDiff], list[str]]:
        """Differences of the resource's own deployment, and the settings among them that need stop + start."""
        desired = dep.desired_deployment(resource.spec.get("deployment"), resource.name)
        previous = (live.get("ledger") or {}).get("deployment_id")
        deployments = live.get("deployments") or {}
        diffs: list[FieldDiff] = []
        if desired is None:
            if previous and previous in deployments:
                diffs.append(FieldDiff("deployment", previous, None))
            return diffs, []
        current = deployments.get(desired["deployment_id"])
        restart_keys: list[str] = []
        if previous and previous != desired["deployment_id"] and previous in deployments:
            diffs.append(FieldDiff("deployment.deployment_id", previous, desired["deployment_id"]))
            restart_keys.append("deployment_id")
        if current is None:
            diffs.append(FieldDiff("deployment", None, desired["deployment_id"]))
            return diffs, restart_keys
        in_place, restart = dep.compare(desired, dep.live_deployment(current))
        diffs += [FieldDiff(f"deployment.{k}", have, want) for k, have, want in in_place + restart]
        return diffs, restart_keys + [k for k, _, _ in restart]

    # ---- planning checks ------------------------------------------------------------------------------------
    def preflight(self, ctx: Any, change: Change) -> list[str]:
        """Refusals known before any write: someone else's model in the way, a cluster without ML capacity."""
        errors = []
        live = change.live or {}
        if change.action == "replace" and not live.get("ours"):
            who = (f"stack {live['foreign_stack']!r}" if live.get("foreign_stack")
                   else "another tool (e.g. eland_import_hub_model)")
            errors.append(f"{change.key}: a trained model with this id exists, uploaded by {who}; this stack will "
                          f"not replace it. Delete it (DELETE _ml/trained_models/{change.name}?force=true) or "
                          f"declare the model under another name")
        if change.action in ("create", "replace"):
            problem = dep.capacity_problem(dep.ml_limits(ctx.client))
            if problem:
                errors.append(f"{change.key}: {problem}")
        return errors

    # ---- writes ---------------------------------------------------------------------------------------------
    def create(self, ctx: Any, change: Change) -> None:
        resource = self._resource(change)
        prepared = importer.prepare(ctx, resource, deployments=self._allocations(resource))
        importer.ensure_uploaded(ctx, resource, prepared)
        importer.record(ctx, resource, prepared, complete=True)
        self._converge_deployment(ctx, resource, change.live)

    def update(self, ctx: Any, change: Change) -> None:
        resource = self._resource(change)
        live = change.live or {}
        if any(d.path == "definition" for d in change.diffs):
            prepared = importer.prepare(ctx, resource, deployments=self._allocations(resource))
            importer.ensure_uploaded(ctx, resource, prepared)
            importer.record(ctx, resource, prepared, complete=True, previous=live.get("ledger"))
        self._converge_deployment(ctx, resource, live)

    def replace(self, ctx: Any, change: Change) -> None:
        resource = self._resource(change)
        live = change.live or {}
        if live and not live.get("ours"):
            raise Refused(self.preflight(ctx, change)[0])
        # Trace and check first: a model that cannot be imported must not cost the one in place.
        prepared = importer.prepare(ctx, resource, deployments=self._allocations(resource))
        ctx.reporter.info(f"{change.key}: deleting the previous model (its deployments stop)")
        importer.delete_model(ctx.client, resource.name)
        importer.ensure_uploaded(ctx, resource, prepared)
        importer.record(ctx, resource, prepared, complete=True, deployment_id=None)
        self._converge_deployment(ctx, resource, None)

    def delete(self, ctx: Any, change: Change) -> None:
        live = change.live or {}
        if live and not live.get("ours"):
            raise Refused(f"{change.key}: the model in the cluster is not managed by stack {ctx.stack!r}; "
                          f"only the ownership record is removed")
        if live:
            entry = live.get("ledger") or {}
            if entry.get("deployment_id"):
                dep.stop(ctx.client, entry["deployment_id"])
            importer.delete_model(ctx.client, change.name)
        ctx.ledger.forget(KIND, change.name)

    # ---- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _resource(change: Change) -> Resource:
        assert change.resource is not None, "writes other than delete need the declared resource"
        return change.resource

    @staticmethod
    def _allocations(resource: Resource) -> int:
        deployment = resource.spec.get("deployment") or {}
        adaptive = deployment.get("adaptive_allocations") or {}
        return int(adaptive.get("min_number_of_allocations") or deployment.get("number_of_allocations") or 1)

    def _converge_deployment(self, ctx: Any, resource: Resource, live: dict[str, Any] | None) -> None:
        """Start, update in place, or restart the resource's own deployment; then wait for it and probe it."""
        client, timeout = ctx.client, float(ctx.options.wait_timeout)
        desired = dep.desired_deployment(resource.spec.get("deployment"), resource.name)
        live = live or {}
        entry = ctx.ledger.entry(KIND, resource.name) or {}
        previous = entry.get("deployment_id")
        deployments = live.get("deployments") or {}
        if previous and previous in deployments and (desired is None or previous != desired["deployment_id"]):
            ctx.reporter.info(f"{resource.key}: stopping deployment {previous}")
            dep.stop(client, previous)
        if desired is None:
            if previous:
                importer.record(ctx, resource, None, complete=True, deployment_id=None, previous=entry)
            return
        current = deployments.get(desired["deployment_id"])
        if current is not None:
            in_place, restart = dep.compare(desired, dep.live_deployment(current))
            if restart:
                ctx.reporter.info(f"{resource.key}: restarting deployment {desired['deployment_id']} "
                                  f"({', '.join(k for k, _, _ in restart)} cannot change in place)")
                dep.stop(client, desired["deployment_id"])
                dep.start(client, resource.name, desired, timeout)
            elif in_place:
                dep.update(client, desired)
        else:
            ctx.reporter.info(f"{resource.key}: starting deployment {desired['deployment_id']}")
            dep.start(client, resource.name, desired, timeout)
        importer.record(ctx, resource, None, complete=True, deployment_id=desired["deployment_id"],
                        previous=ctx.ledger.entry(KIND, resource.name) or entry)
        dep.wait_ready(client, resource.name, desired["deployment_id"], timeout, resource=resource.key)
        dep.probe_model(client, desired["deployment_id"], resource.spec["task_type"], timeout)
        ctx.reporter.info(f"{resource.key}: deployment {desired['deployment_id']} ready (probe inference answered)")

