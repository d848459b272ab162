"""Kind `inference_endpoint`: an inference endpoint of any task type and service (secrets write-only).

read   = ONE GET _inference/_all (preconfigured `.`-prefixed endpoints are never ours and are skipped).
diff   = declared keys only, normalised as ES reports them; secrets compared through a salted hash kept in the
         ownership record (GET never returns them), so rotating one plans an update and its value is never shown.
update = PUT _inference/{task}/{id}/_update for what ES changes in place (allocations of in-cluster services,
         secrets, task_settings); replace (DELETE + PUT) for service, task type, model, threads, the rest.
wait   = for the elasticsearch service, wait for the deployment ES started (deployment id = inference id) and
         probe it with one real request (rerank: 2 documents).
An endpoint has no place for an owner marker (its body is service, service_settings, task_settings and
chunking_settings only: elasticsearch-specification inference/_types/Services.ts): the ledger is the record.
"""

from __future__ import annotations

import os
import secrets as pysecrets
from typing import Any, TypedDict

from provisioning.diffing import MASK, canonical_json, declared_diffs, secret_hash
from provisioning.errors import Problem, Refused
from provisioning.kinds.base import NO_SLOT
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, Step
from provisioning.model_import.steps import WAIT_SENDS
from provisioning.operations import secret_ref, segment

KIND = "inference_endpoint"
IN_CLUSTER = ("elasticsearch", "elser")  # services that run a trained model deployment in the cluster
# What `_update` accepts in service_settings of an in-cluster endpoint (ElasticsearchInternalServiceSettings
# .updateServiceSettings, lessons-from-peers.md §5d); everything else there is immutable.
UPDATABLE_SERVICE_SETTINGS = ("num_allocations", "adaptive_allocations")
# Server defaults ES fills in, so a manifest that omits them (or states them) plans no change.
TASK_SETTINGS_DEFAULTS = {("elasticsearch", "rerank"): {"return_documents": True}}
CHUNKING_DEFAULTS = {"sentence": {"max_chunk_size": 250, "sentence_overlap": 1},  # TF-ES chunking_defaults.go
                     "word": {"max_chunk_size": 250, "overlap": 100}}


def _secret_values(environ: Any, spec: dict[str, Any]) -> dict[str, str] | None:
    """{setting: value} from the environment; None when one is missing (planning without secrets)."""
    refs = spec.get("secrets") or {}
    values = {key: environ.get(ref["env"]) for key, ref in refs.items()}
    return None if any(not v for v in values.values()) else values  # type: ignore[return-value]


def _secrets_hash(values: dict[str, str], salt: str) -> str:
    return secret_hash(canonical_json(values), salt)


def rerank_endpoint(resources: list[Resource]) -> str | None:
    """The first rerank inference endpoint the manifests declare (`invoke search --rerank`'s default)."""
    for r in resources:
        if r.kind == KIND and r.spec.get("task_type") == "rerank":
            return r.name
    return None


class EndpointLive(TypedDict):
    """An inference endpoint as GET _inference answers it (secrets never included)."""

    endpoint: dict[str, Any]


class InferenceEndpointKind:
    name = KIND

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        settings = resource.spec.get("service_settings") or {}
        model_id = settings.get("model_id")
        return [f"trained_model/{model_id}"] if model_id and resource.spec.get("service") in IN_CLUSTER else []

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        problems: list[Problem] = []
        spec = resource.spec
        settings = spec.get("service_settings") or {}

        def problem(path: str, message: str, hint: str = "") -> None:
            where = resource.line_of(path)
            problems.append(Problem(where.file, where.line, f"{resource.key}: {message}", hint))

        if resource.name.startswith("."):
            problem("name", "ids starting with '.' are reserved for preconfigured endpoints")
        if spec.get("service") in IN_CLUSTER:
            if "num_threads" not in settings:
                problem("spec.service_settings", "num_threads is required for the elasticsearch service")
            adaptive = settings.get("adaptive_allocations") or {}
            if adaptive.get("enabled") and "num_allocations" in settings:
                problem("spec.service_settings", "num_allocations and adaptive_allocations exclude each other",
                        "ES rejects the request yet creates the endpoint (elasticsearch#137127)")
            if f"trained_model/{resource.name}" in resources:
                problem("name", "an inference id must differ from every trained model id (ES: Inference endpoint "
                                "IDs must be unique)", "e.g. name the endpoint after its use, not the model")
        from provisioning.names import INFERENCE_ID, name_problems  # ES rule (MlStrings.isValidId), as data

        return problems + name_problems(resource, INFERENCE_ID)

    # ---- read -------------------------------------------------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, EndpointLive]:
        names = {r.name for r in resources} | set(owned)
        if not names:
            return {}
        endpoints = ctx.client.inference.get(inference_id="_all").body.get("endpoints", [])
        return {e["inference_id"]: {"endpoint": e} for e in endpoints
                if not e.get("inference_id", "").startswith(".") and e.get("inference_id") in names}

    def marker(self, live: EndpointLive) -> str | None:
        return NO_SLOT

    def is_recorded(self, live: EndpointLive, entry: dict[str, Any], desired: dict[str, Any] | None) -> bool:
        """An endpoint has no id of its own to compare: it is the recorded one when what cannot change in place
        (task type, service, the model it serves) is what this stack last applied, or what it is applying now (a
        replacement stopped before its record). Anything else is another endpoint that took the name."""
        endpoint = live["endpoint"]

        def same(spec: dict[str, Any]) -> bool:
            model = (spec.get("service_settings") or {}).get("model_id")
            return endpoint.get("task_type") == spec.get("task_type") and \
                endpoint.get("service") == spec.get("service") and \
                (model is None or (endpoint.get("service_settings") or {}).get("model_id") == model)

        applied = entry.get("applied") or {}
        return not applied or same(applied) or (desired is not None and same(desired))

    def describe(self, live: EndpointLive) -> str:
        return f"a {live['endpoint'].get('task_type')} inference endpoint"

    def view(self, live: EndpointLive) -> Any:
        return live["endpoint"]

    # ---- diff (pure): the operations ------------------------------------------------------------------------------
    def diff(self, resource: Resource, live: EndpointLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        change = Change(KIND, resource.name, "noop", resource=resource, live=live)
        spec = resource.spec
        environ = getattr(ctx, "environ", os.environ)
        values = _secret_values(environ, spec)
        salt = (entry or {}).get("secrets_salt") or pysecrets.token_hex(16)
        planned_hash = _secrets_hash(values, salt) if values else None
        if spec.get("secrets"):
            change.record = {"secrets_salt": salt, "secrets_hash": planned_hash or (entry or {}).get("secrets_hash")}
        if live is None:
            change.action, change.reason = "create", f"{spec['task_type']} endpoint on service {spec['service']}"
            change.operations = self._create_ops(resource, values, salt)
            return change
        endpoint = live["endpoint"]
        replace: list[FieldDiff] = []
        in_place: list[FieldDiff] = []
        for key in ("task_type", "service"):
            if endpoint.get(key) != spec.get(key):
                replace.append(FieldDiff(key, endpoint.get(key), spec.get(key), forces_replacement=True))
        desired_settings = dict(spec.get("service_settings") or {})
        live_settings = dict(endpoint.get("service_settings") or {})
        adaptive = desired_settings.get("adaptive_allocations") or {}
        ignore = {"num_allocations"} if adaptive.get("enabled") else set()  # adaptive moves it: not drift
        for d in declared_diffs(desired_settings, live_settings, "service_settings", ignore=frozenset(ignore)):
            top = d.path.split(".")[1]
            if spec.get("service") in IN_CLUSTER and top in UPDATABLE_SERVICE_SETTINGS:
                in_place.append(d)
            else:
                d.forces_replacement = True
                replace.append(d)
        defaults = TASK_SETTINGS_DEFAULTS.get((spec.get("service"), spec.get("task_type")), {})
        live_task = {**defaults, **(endpoint.get("task_settings") or {})}
        in_place += declared_diffs(spec.get("task_settings") or {}, live_task, "task_settings")
        chunking = spec.get("chunking_settings")
        if chunking:
            want = {**CHUNKING_DEFAULTS.get(chunking.get("strategy", ""), {}), **chunking}
            for d in declared_diffs(want, endpoint.get("chunking_settings") or {}, "chunking_settings"):
                d.forces_replacement = True  # _update takes chunking_settings only since 9.5 (ES #149723)
                replace.append(d)
        if spec.get("secrets") and entry and planned_hash is not None and planned_hash != entry.get("secrets_hash"):
            in_place.append(FieldDiff("secrets", MASK, MASK, sensitive=True))
        change.diffs = replace + in_place
        if replace:
            reason = "changes Elasticsearch cannot make in place: " + ", ".join(d.path for d in replace)
            return self._replacement(change, resource, endpoint, values, salt, reason)
        if in_place:
            change.action = "update"
            change.reason = "updated in place (PUT _inference/.../_update)"
            change.operations = [self._update_request(resource, in_place, values, salt), *self._wait(resource)]
        return change

    def _replacement(self, change: Change, resource: Resource, endpoint: dict[str, Any],
                     values: dict[str, str] | None, salt: str, reason: str) -> Change:
        change.action, change.reason = "replace", reason
        change.hazards.append(Hazard("interruption", f"{resource.spec['task_type']} endpoint {resource.name} is "
                                                     f"unavailable between its deletion and its creation: searches "
                                                     f"using it fail meanwhile"))
        task_type = endpoint.get("task_type") or resource.spec["task_type"]
        # plain DELETE (no force): ES refuses while something uses the endpoint, naming the indices/pipelines
        change.operations = [Request("DELETE", f"/_inference/{segment(task_type)}/{segment(resource.name)}",
                                     ignore=(404,)), *self._create_ops(resource, values, salt)]
        return change

    def _create_ops(self, resource: Resource, values: dict[str, str] | None, salt: str) -> list[Any]:
        spec = resource.spec
        settings = dict(spec.get("service_settings") or {})
        for key, ref in (spec.get("secrets") or {}).items():
            settings[key] = secret_ref(ref["env"], secret_hash(values[key], salt) if values else None)
        body: dict[str, Any] = {"service": spec["service"], "service_settings": settings}
        for key in ("task_settings", "chunking_settings"):
            if spec.get(key):
                body[key] = spec[key]
        # ?timeout: the PUT of an in-cluster endpoint waits for the deployment ES starts for it
        return [Request("PUT", f"/_inference/{segment(spec['task_type'])}/{segment(resource.name)}",
                        query={"timeout": "600s"}, body=body), *self._wait(resource)]

    @staticmethod
    def _update_request(resource: Resource, diffs: list[FieldDiff], values: dict[str, str] | None,
                        salt: str) -> Request:
        spec = resource.spec
        paths = [d.path for d in diffs]
        settings = spec.get("service_settings") or {}
        body: dict[str, Any] = {}
        service_settings: dict[str, Any] = {}
        if any(p.startswith("service_settings.") for p in paths):
            adaptive = settings.get("adaptive_allocations") or {}
            # ES takes num_allocations OR adaptive_allocations, never both
            if adaptive.get("enabled") or ("adaptive_allocations" in settings and "num_allocations" not in settings):
                service_settings["adaptive_allocations"] = settings["adaptive_allocations"]
            elif "num_allocations" in settings:
                service_settings["num_allocations"] = settings["num_allocations"]
        if "secrets" in paths:  # secrets are sent only when they change: other updates need none in the environment
            for key, ref in (spec.get("secrets") or {}).items():
                service_settings[key] = secret_ref(ref["env"], secret_hash(values[key], salt) if values else None)
        if service_settings:
            body["service_settings"] = service_settings
        if any(p.startswith("task_settings") for p in paths):
            body["task_settings"] = spec.get("task_settings") or {}
        return Request("PUT", f"/_inference/{segment(spec['task_type'])}/{segment(resource.name)}/_update", body=body)

    @staticmethod
    def _wait(resource: Resource) -> list[Step]:
        spec = resource.spec
        settings = spec.get("service_settings") or {}
        if spec.get("service") not in IN_CLUSTER or not settings.get("model_id"):
            return []  # external services: a probe would cost money and the PUT already validated the settings
        deployment_id = settings.get("deployment_id") or resource.name
        return [Step("wait_endpoint", {"inference_id": resource.name, "task_type": spec["task_type"],
                                       "model_id": settings["model_id"], "deployment_id": deployment_id},
                     sends=WAIT_SENDS, summary=f"wait until deployment {deployment_id} serves, then one probe "
                                               f"request to the endpoint")]

    def delete(self, name: str, live: EndpointLive | None, entry: dict[str, Any] | None, ctx: Any) -> Change:
        change = Change(KIND, name, "delete", live=live)
        if live is None:
            return change
        task_type = live["endpoint"].get("task_type")
        change.hazards.append(Hazard("interruption", f"{task_type} endpoint {name} is deleted: searches using it "
                                                     f"fail from then on"))
        change.operations = [Request("DELETE", f"/_inference/{segment(task_type)}/{segment(name)}", ignore=(404,))]
        return change

    def dependency_changed(self, change: Change, dependency: Change, ctx: Any) -> Change:
        """A replaced model means a new deployment, so an in-cluster endpoint serving it is recreated after it
        (ES does not restart an endpoint's deployment by itself)."""
        resource = change.resource
        if resource is None or dependency.action != "replace" or change.action in ("replace", "create", "delete"):
            return change
        if dependency.key not in self.references(resource):
            return change
        values = _secret_values(getattr(ctx, "environ", os.environ), resource.spec)
        salt = change.record.get("secrets_salt") or pysecrets.token_hex(16)
        change.diffs = list(change.diffs)
        return self._replacement(change, resource, change.live["endpoint"], values, salt,
                                 f"{dependency.key} is replaced; the endpoint is recreated to deploy the new model")

    # ---- facts for adoption and renames (lifecycle.py decides) ----------------------------------------------
    def adopt(self, resource: Resource, live: EndpointLive, ctx: Any) -> Change:
        """Its non-secret settings are compared (the differences are planned as updates, or a replacement, once it
        is adopted); write-only secrets cannot be read back, so they are unverified until they next change."""
        compared = self.diff(resource, live, None, ctx)
        unverified = "its secrets cannot be read back (unverified); " if resource.spec.get("secrets") else ""
        differs = (f"{len(compared.diffs)} differences are planned after adoption" if compared.diffs
                   else "its settings match the manifest")
        return Change(KIND, resource.name, "adopt", compared.diffs, resource=resource, live=live,
                      record=compared.record, reason=f"{unverified}{differs}")

    def rename(self, resource: Resource, old_name: str, live: EndpointLive, entry: dict[str, Any],
               ctx: Any) -> Change:
        raise Refused(f"{resource.key} ({resource.source}): an inference endpoint id cannot be changed; remove "
                      f"moved_from (the endpoint is created under the new id and inference_endpoint/{old_name} "
                      f"deleted)")

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        """A create or replace needs its write-only secrets at apply; a plan (options.require_secrets false)
        plans them as unknown instead: the marker carries no hash, and apply requires the variable."""
        if change.action in ("create", "replace") and change.resource is not None:
            missing = [(key, ref["env"]) for key, ref in (change.resource.spec.get("secrets") or {}).items()
                       if not getattr(ctx, "environ", os.environ).get(ref["env"])]
            if missing and not getattr(getattr(ctx, "options", None), "require_secrets", True):
                unknown = ", ".join(f"{key} from {env}" for key, env in missing)
                change.reason = f"{change.reason}; secret unknown ({unknown}): will be set at apply"
                return []
            return [f"{change.key}: environment variable {env} is not set (secret {key})" for key, env in missing]
        return []
