"""Kind `trained_model`: a Hugging Face model traced by eland and uploaded, optionally with a deployment.

read  = ONE GET _ml/trained_models/<id1*,id2*,...> plus ONE GET .../_stats, whatever the number of models.
diff  = pure: what the model IS (a hub id and revision, or the hash of a local model's files: never its path)
        against what the upload recorded in the model's metadata (no tracing, no torch); deployment settings
        against `_stats`. Operations: prepare (trace or reuse the cached artifact), upload, start/update/stop the
        deployment, wait for it to serve.
Heavy imports (torch, transformers, eland.ml) happen only inside the prepare/upload steps, when a model is traced.
The owner marker lives in the model's `metadata` {managed_by, stack}.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from provisioning.errors import Problem, Refused
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, Step
from provisioning.model_import import deployment as dep
from provisioning.model_import import importer
from provisioning.model_import.cache import comparable
from provisioning.model_import.steps import UPLOAD_SENDS, WAIT_SENDS
from provisioning.operations import segment

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


class ModelLive(TypedDict):
    """A trained model as read: its config, what our upload recorded in its metadata, its deployments."""

    config: dict[str, Any]
    recorded: dict[str, Any]  # metadata.es_stack: identity, cache key, artifact checksum ({} if not ours)
    stack: str | None  # the owner marker (metadata.stack)
    deployments: dict[str, dict[str, Any]]  # deployment id -> deployment_stats


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

    # ---- read ------------------------------------------------------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, ModelLive]:
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
        live: dict[str, ModelLive] = {}
        wanted = set(names)
        for config in configs.body.get("trained_model_configs", []):
            model_id = config.get("model_id")
            if model_id not in wanted:
                continue
            managed_by, stack = importer.owner(config)
            live[model_id] = {"config": config, "recorded": importer.recorded(config),
                              "stack": stack if managed_by == importer.MANAGED_BY else None,
                              "deployments": deployments.get(model_id, {})}
        return live

    def marker(self, live: ModelLive) -> str | None:
        return live.get("stack")

    def is_recorded(self, live: ModelLive, entry: dict[str, Any], desired: dict[str, Any] | None) -> bool:
        """A model without our marker (adopted) is the recorded one while its create_time is the recorded one: a
        model deleted and uploaded again by hand under the same id is another model."""
        return entry.get("create_time") in (None, live["config"].get("create_time"))

    def describe(self, live: ModelLive) -> str:
        return "a trained model"

    def view(self, live: ModelLive) -> Any:
        # the model's identity and its deployments' settings; not their allocation progress or counters
        return {"recorded": live["recorded"], "stack": live.get("stack"),
                "deployments": {d: {k: v for k, v in dep.live_deployment(s).items() if k != "allocation_status"}
                                for d, s in sorted((live.get("deployments") or {}).items())}}

    # ---- diff (pure): the operations ------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: ModelLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        source = importer.source_of(resource)
        try:
            identity = source.identity()
        except FileNotFoundError as exc:
            raise Refused(f"{resource.key} ({resource.source}): {exc}") from exc
        change = Change(KIND, resource.name, "noop", resource=resource, live=live)
        desired = dep.desired_deployment(resource.spec.get("deployment"), resource.name)
        change.record = {"identity": identity, "deployment_id": desired["deployment_id"] if desired else None}
        upload = self._upload_step(resource, identity)
        if live is None:
            change.action, change.reason = "create", f"upload {source.describe()} ({source.task_type})"
            change.record["upload_complete"] = False
            change.operations = [upload, *self._deployment_ops(resource, desired, {}, None)]
            return change
        # what the model is known to be: what our upload recorded in its metadata; for a model uploaded otherwise
        # (eland_import_hub_model), what its ownership record says was declared when it was adopted (unverified)
        record = live["recorded"] or (entry or {}).get("identity") or {}
        if comparable(record) != comparable(identity):
            change.diffs = self._identity_diffs(record, identity)
            return self._replacement(change, resource, identity, desired, entry)
        if REPLACE_ON_LIBRARY_UPGRADE and record.get("cache_key") != source.cache_key(identity):
            change.diffs = [FieldDiff("cache_key", record.get("cache_key"), source.cache_key(identity),
                                      forces_replacement=True)]
            return self._replacement(change, resource, identity, desired, entry)
        if not ((entry or {}).get("upload_complete") and importer.same_identity((entry or {}).get("identity") or {},
                                                                                identity)):
            change.action = "update"
            change.reason = "the last upload did not finish (interrupted); it is resumed"
            change.diffs.append(FieldDiff("definition", "incomplete", "complete"))
            change.operations.append(upload)
        previous = (entry or {}).get("deployment_id")
        diffs, ops = self._deployment_changes(resource, desired, live.get("deployments") or {}, previous)
        if diffs:
            change.diffs += diffs
            change.operations += ops
            if change.action == "noop":
                change.action = "update"
                change.reason = "deployment started, stopped, restarted or updated in place"
        return change

    @staticmethod
    def _identity_diffs(record: dict[str, Any], identity: dict[str, Any]) -> list[FieldDiff]:
        if not record:
            return [FieldDiff("provenance", None, identity.get("source"), forces_replacement=True)]
        was, now = comparable(record), comparable(identity)
        if was[0] != now[0] or was[:2] != now[:2] and now[0] == "hub":
            return [FieldDiff("source", record.get("source"), identity.get("source"), forces_replacement=True)]
        return [FieldDiff(key, record.get(key), identity.get(key), forces_replacement=True)
                for key in ("revision", "task_type") if record.get(key) != identity.get(key)]

    def _replacement(self, change: Change, resource: Resource, identity: dict[str, Any],
                     desired: dict[str, Any] | None, entry: dict[str, Any] | None) -> Change:
        change.action = "replace"
        change.reason = "a different model: re-upload it (the endpoints serving it are recreated)"
        change.record["upload_complete"] = False
        change.hazards.append(Hazard("interruption", f"trained model {resource.name} is deleted and uploaded "
                                                     f"again: its deployments stop meanwhile"))
        prepare = self._upload_step(resource, identity, name="prepare_model")
        change.operations = [prepare, Request("DELETE", f"/_ml/trained_models/{segment(resource.name)}",
                                              query={"force": True}, ignore=(404,)),
                             self._upload_step(resource, identity),
                             *self._deployment_ops(resource, desired, {}, None)]
        return change

    @staticmethod
    def _upload_step(resource: Resource, identity: dict[str, Any], name: str = "upload_model") -> Step:
        deployment = resource.spec.get("deployment") or {}
        adaptive = deployment.get("adaptive_allocations") or {}
        allocations = int(adaptive.get("min_number_of_allocations") or deployment.get("number_of_allocations") or 1)
        what = importer.source_of(resource).describe()
        return Step(name, {"model_id": resource.name, "spec": resource.spec, "source_file": resource.source.file,
                           "identity": identity, "allocations": allocations},
                    sends=UPLOAD_SENDS if name == "upload_model" else (),
                    summary=(f"trace {what} with eland (or reuse the cached artifact), check ML capacity"
                             if name == "prepare_model" else
                             f"upload {what} as {resource.name}: config, definition parts, vocabulary "
                             f"(resumes an interrupted upload)"))

    def _deployment_changes(self, resource: Resource, desired: dict[str, Any] | None,
                            deployments: dict[str, Any], previous: str | None) -> tuple[list[FieldDiff], list[Any]]:
        """Differences of the resource's own deployment and the operations that converge it."""
        diffs: list[FieldDiff] = []
        if desired is None:
            if previous and previous in deployments:
                diffs.append(FieldDiff("deployment", previous, None))
            return diffs, self._deployment_ops(resource, desired, deployments, previous) if diffs else []
        current = deployments.get(desired["deployment_id"])
        if previous and previous != desired["deployment_id"] and previous in deployments:
            diffs.append(FieldDiff("deployment.deployment_id", previous, desired["deployment_id"]))
        if current is None:
            diffs.append(FieldDiff("deployment", None, desired["deployment_id"]))
        else:
            in_place, restart = dep.compare(desired, dep.live_deployment(current))
            diffs += [FieldDiff(f"deployment.{k}", have, want) for k, have, want in in_place + restart]
        return diffs, self._deployment_ops(resource, desired, deployments, previous) if diffs else []

    @staticmethod
    def _deployment_ops(resource: Resource, desired: dict[str, Any] | None, deployments: dict[str, Any],
                        previous: str | None) -> list[Any]:
        """Stop what must stop, then start, restart or update in place, then wait until it serves."""
        ops: list[Any] = []
        model = segment(resource.name)
        if previous and previous in deployments and (desired is None or previous != desired["deployment_id"]):
            ops.append(_stop(model, previous))
        if desired is None:
            return ops
        deployment_id = desired["deployment_id"]
        current = deployments.get(deployment_id)
        if current is not None:
            in_place, restart = dep.compare(desired, dep.live_deployment(current))
            if restart:
                ops += [_stop(model, deployment_id), _start(model, desired)]
            elif in_place:
                ops.append(Request("POST", f"/_ml/trained_models/{segment(deployment_id)}/deployment/_update",
                                   body=dep.update_body(desired)))
        else:
            ops.append(_start(model, desired))
        ops.append(Step("wait_deployment", {"model_id": resource.name, "deployment_id": deployment_id,
                                            "task_type": resource.spec["task_type"]}, sends=WAIT_SENDS,
                        summary=f"wait until deployment {deployment_id} serves, then one probe inference"))
        return ops

    def delete(self, name: str, live: ModelLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        change = Change(KIND, name, "delete", live=live)
        if live is None:
            return change
        change.hazards.append(Hazard("interruption", f"trained model {name} and its deployments are deleted"))
        deployment_id = (entry or {}).get("deployment_id")
        if deployment_id and deployment_id in (live.get("deployments") or {}):
            change.operations.append(_stop(segment(name), deployment_id))
        # force: ES force-stops every deployment of the model first (TransportDeleteTrainedModelAction)
        change.operations.append(Request("DELETE", f"/_ml/trained_models/{segment(name)}", query={"force": True},
                                         ignore=(404,)))
        return change

    def dependency_changed(self, change: Change, dependency: Change, ctx: Any) -> Change:
        return change

    # ---- facts for adoption and renames (lifecycle.py decides) ----------------------------------------------
    def adopt(self, resource: Resource, live: ModelLive, ctx: Any) -> Change:
        source = importer.source_of(resource)
        try:
            identity = source.identity()
        except FileNotFoundError as exc:
            raise Refused(f"{resource.key} ({resource.source}): {exc}") from exc
        diffs: list[FieldDiff] = []
        live_task = next(iter(live["config"].get("inference_config") or {}), None)
        if live_task != resource.spec.get("task_type"):
            diffs.append(FieldDiff("task_type", live_task, resource.spec.get("task_type"), forces_replacement=True))
        desired = dep.desired_deployment(resource.spec.get("deployment"), resource.name)
        deployment_diffs, _ = self._deployment_changes(resource, desired, live.get("deployments") or {}, None)
        diffs += deployment_diffs
        if live["recorded"]:
            verified = "uploaded by es-stack (its provenance is in its metadata)"
        else:
            verified = ("its content is UNVERIFIED: it was uploaded without es-stack, so its metadata holds no "
                        "provenance or checksum; it is kept as it is")
        return Change(KIND, resource.name, "adopt", diffs, resource=resource, live=live,
                      record={"identity": identity, "upload_complete": True,
                              "deployment_id": desired["deployment_id"] if desired else None,
                              "create_time": live["config"].get("create_time")},
                      reason=f"{verified}; recorded as {source.describe()}, so a later change of source replaces "
                             f"it" + (f"; {len(diffs)} differences are planned after adoption" if diffs else ""))

    def rename(self, resource: Resource, old_name: str, live: ModelLive, entry: dict[str, Any], ctx: Any) -> Change:
        raise Refused(f"{resource.key} ({resource.source}): a trained model id cannot be changed; remove moved_from "
                      f"(the model is uploaded under the new id and trained_model/{old_name} deleted)")

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        """A cluster without ML capacity is refused before any write (GET _ml/info)."""
        if change.action in ("create", "replace"):
            problem = dep.capacity_problem(dep.ml_limits(ctx.client))
            if problem:
                return [f"{change.key}: {problem}"]
        return []


def _stop(model: str, deployment_id: str) -> Request:
    """Force-stop (ES refuses a plain stop of a deployment an endpoint or pipeline uses, elasticsearch#129325)."""
    return Request("POST", f"/_ml/trained_models/{segment(deployment_id)}/deployment/_stop", query={"force": True},
                   ignore=(404,))


def _start(model: str, desired: dict[str, Any]) -> Request:
    # 408: the start goes on in the background (elasticsearch#109407): never re-sent, wait_deployment polls
    query, body = dep.start_request(desired)
    return Request("POST", f"/_ml/trained_models/{model}/deployment/_start", query=query, body=body, ignore=(408,))
