"""Kind `inference_endpoint`: an inference endpoint of any task type and service (secrets write-only).

read   = ONE GET _inference/_all (preconfigured `.`-prefixed endpoints are never ours and are skipped).
diff   = declared keys only, normalised as ES reports them; secrets compared through a salted hash kept in the
         ledger (GET never returns them), so rotating one plans an update and its value is never shown.
update = PUT _inference/{task}/{id}/_update for what ES changes in place (allocations of in-cluster services,
         secrets, task_settings); replace (DELETE + PUT) for service, task type, model, threads, the rest.
apply  = for the elasticsearch service, wait for the deployment ES started (deployment id = inference id) and
         probe it with one real request (rerank: 2 documents).
"""

from __future__ import annotations

import os
import secrets as pysecrets
from typing import Any

from elasticsearch import ApiError

from provisioning.diffing import MASK, canonical_json, declared_diffs, secret_hash, spec_hash
from provisioning.errors import ClusterError, Problem, es_reason
from provisioning.model import Change, FieldDiff, Resource
from provisioning.model_import import deployment as dep

KIND = "inference_endpoint"
IN_CLUSTER = ("elasticsearch", "elser")  # services that run a trained model deployment in the cluster
# What `_update` accepts in service_settings of an in-cluster endpoint (ElasticsearchInternalServiceSettings
# .updateServiceSettings, lessons-from-peers.md §5d); everything else there is immutable.
UPDATABLE_SERVICE_SETTINGS = ("num_allocations", "adaptive_allocations")
# Server defaults ES fills in, so a manifest that omits them (or states them) plans no change.
TASK_SETTINGS_DEFAULTS = {("elasticsearch", "rerank"): {"return_documents": True}}
CHUNKING_DEFAULTS = {"sentence": {"max_chunk_size": 250, "sentence_overlap": 1},  # TF-ES chunking_defaults.go
                     "word": {"max_chunk_size": 250, "overlap": 100}}


def _secret_values(ctx: Any, spec: dict[str, Any], *, strict: bool) -> dict[str, str] | None:
    """{setting: value} from the environment; None when one is missing and not strict (planning without secrets)."""
    refs = spec.get("secrets") or {}
    if not refs:
        return {}
    if strict:
        return {key: ctx.secret(ref["env"]) for key, ref in refs.items()}
    environ = getattr(ctx, "environ", os.environ)
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

    # ---- read / diff ------------------------------------------------------------------------------------------
    def read(self, ctx: Any, resources: list[Resource], owned: dict[str, Any]) -> dict[str, Any]:
        names = {r.name for r in resources} | set(owned)
        if not names:
            return {}
        endpoints = ctx.client.inference.get(inference_id="_all").body.get("endpoints", [])
        declared = {r.name: r for r in resources}
        live: dict[str, Any] = {}
        for endpoint in endpoints:
            name = endpoint.get("inference_id", "")
            if name.startswith(".") or name not in names:
                continue
            entry = owned.get(name) or {}
            desired_hash = None  # unknown: a secret is not in this environment (plan/destroy without secrets)
            resource = declared.get(name)
            values = _secret_values(ctx, resource.spec, strict=False) if resource is not None else None
            if values:
                salt = entry.get("secrets_salt")
                desired_hash = _secrets_hash(values, salt) if salt else "(secrets not applied yet)"
            live[name] = {"endpoint": endpoint, "ledger": owned.get(name), "secrets_hash": desired_hash}
        return live

    def diff(self, resource: Resource, live: Any | None) -> Change:
        change = Change(KIND, resource.name, "noop", resource=resource, live=live)
        spec = resource.spec
        if live is None:
            change.action, change.reason = "create", f"{spec['task_type']} endpoint on service {spec['service']}"
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
        entry = live.get("ledger") or {}
        if spec.get("secrets") and entry and live.get("secrets_hash") != entry.get("secrets_hash") \
                and live.get("secrets_hash") is not None:
            in_place.append(FieldDiff("secrets", MASK, MASK, sensitive=True))
        change.diffs = replace + in_place
        if replace:
            change.action = "replace"
            change.reason = "changes Elasticsearch cannot make in place: " + ", ".join(d.path for d in replace)
        elif in_place:
            change.action = "update"
            change.reason = "updated in place (PUT _inference/.../_update)"
        return change

    def dependency_replaced(self, change: Change, dependency: Change) -> Change:
        """The planner's cascade hook: a replaced model means a new deployment, so an in-cluster endpoint serving
        it is recreated after it (ES does not restart an endpoint's deployment by itself)."""
        resource = change.resource
        if resource is None or change.action in ("replace", "create", "delete"):
            return change
        if dependency.key not in self.references(resource):
            return change
        return Change(KIND, change.name, "replace", diffs=change.diffs,
                      reason=f"{dependency.key} is replaced; the endpoint is recreated to deploy the new model",
                      resource=resource, live=change.live)

    def preflight(self, ctx: Any, change: Change) -> list[str]:
        live = change.live or {}
        if change.action in ("update", "replace") and live and not live.get("ledger"):
            return [f"{change.key}: an inference endpoint with this id exists and is not managed by stack "
                    f"{ctx.stack!r}; delete it (DELETE _inference/{change.name}) or declare another name"]
        if change.action in ("create", "replace") and change.resource is not None:
            return [f"{change.key}: environment variable {ref['env']} is not set (secret {key})"
                    for key, ref in (change.resource.spec.get("secrets") or {}).items()
                    if not getattr(ctx, "environ", os.environ).get(ref["env"])]
        return []

    # ---- writes ---------------------------------------------------------------------------------------------
    def create(self, ctx: Any, change: Change) -> None:
        resource = change.resource
        assert resource is not None
        spec = resource.spec
        values = _secret_values(ctx, spec, strict=True) or {}
        body: dict[str, Any] = {"service": spec["service"],
                                "service_settings": {**(spec.get("service_settings") or {}), **values}}
        for key in ("task_settings", "chunking_settings"):
            if spec.get(key):
                body[key] = spec[key]
        timeout = float(ctx.options.wait_timeout)
        # Owned BEFORE it exists (write-ahead): ES keeps no owner marker on an endpoint, so a run killed between the
        # PUT and the record would leave an endpoint no ledger knows. ES refusing the PUT undoes the record.
        fresh = ctx.ledger.entry(KIND, resource.name) is None
        self._record(ctx, resource, values, None)  # owned from now on, even if the wait below fails
        try:
            ctx.client.options(request_timeout=timeout + 30).inference.put(
                task_type=spec["task_type"], inference_id=resource.name, inference_config=body,
                timeout=f"{int(timeout)}s")
        except ApiError as exc:
            # An attempt whose answer was lost (dropped, timed out: the PUT waits for the deployment) may have created
            # it after all; the retry then fails. Ours if it is there as declared (the plan saw no endpoint).
            if not self._created_by_earlier_attempt(ctx, resource):
                if fresh and exc.meta.status in (400, 403, 404, 409):
                    ctx.ledger.forget(KIND, resource.name)  # ES refused it: nothing of ours exists
                raise
        self._wait_and_probe(ctx, resource)

    @staticmethod
    def _created_by_earlier_attempt(ctx: Any, resource: Resource) -> bool:
        found = ctx.client.options(ignore_status=404).inference.get(inference_id=resource.name)
        endpoints = found.body.get("endpoints", []) if found.meta.status == 200 else []
        if not endpoints:
            return False
        live, spec = endpoints[0], resource.spec
        return live.get("task_type") == spec["task_type"] and live.get("service") == spec["service"] and not \
            declared_diffs(spec.get("service_settings") or {}, live.get("service_settings") or {}, "service_settings")

    def update(self, ctx: Any, change: Change) -> None:
        resource = change.resource
        assert resource is not None
        spec = resource.spec
        paths = [d.path for d in change.diffs]
        settings = spec.get("service_settings") or {}
        # secrets are read only when they change: a task_settings update must not need them in the environment
        values = (_secret_values(ctx, spec, strict=True) or {}) if "secrets" in paths else None
        body: dict[str, Any] = {}
        service_settings: dict[str, Any] = {}
        if any(p.startswith("service_settings.") for p in paths):
            adaptive = settings.get("adaptive_allocations") or {}
            # ES takes num_allocations OR adaptive_allocations, never both
            if adaptive.get("enabled") or ("adaptive_allocations" in settings and "num_allocations" not in settings):
                service_settings["adaptive_allocations"] = settings["adaptive_allocations"]
            elif "num_allocations" in settings:
                service_settings["num_allocations"] = settings["num_allocations"]
        if values:
            service_settings.update(values)
        if service_settings:
            body["service_settings"] = service_settings
        if any(p.startswith("task_settings") for p in paths):
            body["task_settings"] = spec.get("task_settings") or {}
        if body:
            timeout = float(ctx.options.wait_timeout)
            ctx.client.options(request_timeout=timeout + 30).inference.update(
                task_type=spec["task_type"], inference_id=resource.name, inference_config=body)
        self._record(ctx, resource, values, (change.live or {}).get("ledger"))
        self._wait_and_probe(ctx, resource)

    def replace(self, ctx: Any, change: Change) -> None:
        resource = change.resource
        assert resource is not None
        live_endpoint = (change.live or {}).get("endpoint") or {}
        self._delete(ctx, resource.name, live_endpoint.get("task_type") or resource.spec["task_type"])
        self.create(ctx, Change(KIND, resource.name, "create", resource=resource))

    def delete(self, ctx: Any, change: Change) -> None:
        live_endpoint = (change.live or {}).get("endpoint") or {}
        task_type = live_endpoint.get("task_type") or ((change.resource.spec if change.resource else {})
                                                       .get("task_type"))
        self._delete(ctx, change.name, task_type)
        ctx.ledger.forget(KIND, change.name)

    # ---- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _delete(ctx: Any, name: str, task_type: str | None) -> None:
        """Plain DELETE (no force): ES stops the deployment it created and refuses while something uses the
        endpoint; that refusal is reported with ES's own reason (which names the indices/pipelines)."""
        try:
            ctx.client.options(ignore_status=404).inference.delete(inference_id=name, task_type=task_type)
        except ApiError as exc:
            if exc.meta.status == 409:
                raise ClusterError(
                    f"Elasticsearch refuses to delete the endpoint while it is in use: {es_reason(exc)} "
                    f"(remove the semantic_text fields or ingest processors that use it first)",
                    status=409, es_type="status_exception", resource=f"{KIND}/{name}") from exc
            raise

    @staticmethod
    def _record(ctx: Any, resource: Resource, values: dict[str, str] | None, entry: dict[str, Any] | None) -> None:
        """Ownership, plus a salted hash of the secret values (never the values): rotation shows in the plan."""
        extra: dict[str, Any] = {}
        if values:
            salt = (entry or {}).get("secrets_salt") or pysecrets.token_hex(16)
            extra = {"secrets_salt": salt, "secrets_hash": _secrets_hash(values, salt)}
        elif values is None and resource.spec.get("secrets") and entry and entry.get("secrets_hash"):
            extra = {"secrets_salt": entry["secrets_salt"], "secrets_hash": entry["secrets_hash"]}  # unchanged
        ctx.ledger.record(KIND, resource.name, spec_hash=spec_hash(resource.spec), applied=resource.spec, **extra)

    @staticmethod
    def _wait_and_probe(ctx: Any, resource: Resource) -> None:
        spec = resource.spec
        settings = spec.get("service_settings") or {}
        if spec.get("service") not in IN_CLUSTER or not settings.get("model_id"):
            return  # external services: a probe would cost money and the PUT already validated the settings
        timeout = float(ctx.options.wait_timeout)
        deployment_id = settings.get("deployment_id") or resource.name
        dep.wait_ready(ctx.client, settings["model_id"], deployment_id, timeout, resource=resource.key)
        client = ctx.client.options(request_timeout=timeout + 30)
        if spec["task_type"] == "rerank":
            result = client.inference.rerank(inference_id=resource.name, query=dep.PROBE_QUERY,
                                             input=dep.PROBE_DOCS, timeout=f"{int(timeout)}s")
            if len(result.body.get("rerank", [])) != len(dep.PROBE_DOCS):
                raise ClusterError(f"the readiness probe (POST _inference/rerank/{resource.name}) answered "
                                   f"{len(result.body.get('rerank', []))} results for {len(dep.PROBE_DOCS)} documents",
                                   resource=resource.key)
        elif spec["task_type"] in ("text_embedding", "sparse_embedding"):
            client.inference.inference(task_type=spec["task_type"], inference_id=resource.name,
                                       input=[dep.PROBE_DOCS[0]], timeout=f"{int(timeout)}s")
        ctx.reporter.info(f"{resource.key}: deployment {deployment_id} ready (probe answered)")
