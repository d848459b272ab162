"""Creating and updating inference endpoints (ES TransportPutInferenceModelAction, TransportUpdateInferenceModelAction).

For the `elasticsearch` service, PUT starts an ML deployment named after the endpoint (or attaches to an existing
one through `deployment_id`), runs a validation inference, stores the endpoint and only then answers; if the
validation fails the deployment it started is stopped again (es-api-semantics.md §3.1).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from sandbox import versions
from sandbox.errors import EsError, ResourceAlreadyExists, ResourceNotFound, StatusException
from sandbox.inference import services as svc
from sandbox.inference.preconfigured import PRECONFIGURED
from sandbox.ml.store import PACKAGED_MODELS

if TYPE_CHECKING:
    from sandbox.inference.store import InferenceStore

_BODY_KEYS = {"service", "service_settings", "task_settings", "chunking_settings", "task_type"}


def resolve_task_type(path_task_type: str | None, body_task_type: str | None) -> str:
    if path_task_type is not None:
        svc.check_task_type(path_task_type)
    if body_task_type is not None:
        svc.check_task_type(body_task_type)
    if path_task_type and body_task_type and path_task_type != body_task_type:
        raise StatusException(f"Cannot resolve conflicting task_type parameter in the request URL [{path_task_type}] "
                              f"and the request body [{body_task_type}]", 400)
    task_type = path_task_type or body_task_type
    if task_type is None:
        raise StatusException("model is missing required setting [task_type]", 400)
    return task_type


def create_endpoint(store: InferenceStore, inference_id: str, path_task_type: str | None,
                    body: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """Create an endpoint; deprecation warnings ES would send as Warning headers are appended to `warnings`."""
    warnings = [] if warnings is None else warnings
    body = copy.deepcopy(body)
    task_type = resolve_task_type(path_task_type, body.get("task_type"))
    for key in body:
        if key not in _BODY_KEYS:
            raise StatusException(f"Configuration contains unknown settings [{key}]", 400)
    service = body.get("service")
    if service is None:
        raise EsError("Inference endpoint configuration is missing the [service] setting", status=400,
                      type="illegal_argument_exception")
    if not svc.known_service(service):
        raise StatusException(f"Unknown service [{service}]", 400)
    versions.check_inference_body(store.cluster.version, service, body)  # 8.x refusals (sandbox/versions.py)
    if inference_id in PRECONFIGURED:
        raise StatusException(f"[{inference_id}] is a reserved inference ID. Cannot create a new inference endpoint "
                              f"with a reserved ID.", 400)
    ml = store.cluster.ml
    if ml.get_model(inference_id) is not None or inference_id in ml.deployments.by_id:
        # ES 9.x (PR #119543): endpoint ids may not collide with trained model or deployment ids
        raise StatusException(f"Inference endpoint IDs must be unique. Requested inference endpoint ID "
                              f"[{inference_id}] matches existing trained model ID(s) but must not.", 400)
    if inference_id in store.endpoints:
        raise ResourceAlreadyExists(f"Inference endpoint [{inference_id}] already exists")
    settings = body.get("service_settings")
    if not isinstance(settings, dict):
        raise svc.validation_error("[service_settings] does not contain the required setting [service_settings]")
    task_settings = dict(body.get("task_settings") or {})
    endpoint: dict[str, Any] = {"inference_id": inference_id, "task_type": task_type, "service": service}
    if service in svc.ELASTICSEARCH:
        settings = svc.default_model_id(service, settings, warnings)
        task_settings = svc.parse_task_settings(settings.get("model_id"), task_type, task_settings)
        endpoint.update(_deploy(store, inference_id, task_type, svc.parse_elasticsearch_settings(settings, task_type)))
        model_id = endpoint["service_settings"]["model_id"]
        if service == "elser" and model_id in svc.ELSER_MODELS:
            warnings.append(f"The [elser] service is deprecated and will be removed in a future release. Use the "
                            f"[elasticsearch] service instead, with [model_id] set to [{svc.DEFAULT_ELSER_MODEL}] in "
                            f"the [service_settings]")
        if task_type == "rerank" and model_id not in svc.ELSER_MODELS | svc.E5_MODELS:
            task_settings = {"return_documents": task_settings.get("return_documents", True),
                             **{k: v for k, v in task_settings.items() if k != "return_documents"}}
    else:
        public, secrets = svc.split_secrets(settings)
        if service == "test_reranking_service" and public.get("model_id") is None:
            raise svc.validation_error("[service_settings] does not contain the required setting [model_id]")
        needed = svc.EXTERNAL_SECRETS.get(service, ())
        if needed and not any(k in secrets for k in needed):
            raise svc.validation_error(f"[secret_settings] does not contain the required setting [{needed[0]}]")
        endpoint.update({"service_settings": public, "secrets": secrets})
    endpoint["task_settings"] = task_settings
    if task_type in ("text_embedding", "sparse_embedding"):
        endpoint["chunking_settings"] = body.get("chunking_settings") or dict(svc.DEFAULT_CHUNKING)
    store.endpoints[inference_id] = endpoint
    return store.public(endpoint)


def _deploy(store: InferenceStore, inference_id: str, task_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Start (or attach to) the ML deployment and validate it with a test inference."""
    deployments = store.cluster.ml.deployments
    deployment_id = settings.get("deployment_id")
    if deployment_id is not None:
        deployment = deployments.by_id.get(deployment_id)
        if deployment is None:
            raise ResourceNotFound(f"Cannot find deployment [{deployment_id}]")
        if settings.get("model_id") not in (None, deployment.model_id):
            raise StatusException(f"Deployment [{deployment_id}] uses model [{deployment.model_id}] which does not "
                                  f"match the model [{settings['model_id']}] in the request.", 400)
        created = False
    else:
        model_id = settings["model_id"]
        if store.cluster.ml.get_model(model_id) is None:
            if model_id not in PACKAGED_MODELS:
                raise ResourceNotFound(f"Could not deploy model [{model_id}] as the model cannot be found.")
            # ES downloads built-in models (.rerank-v1, .elser_model_2, ...) on demand; without network the
            # download never completes and the start below fails with ES's download-in-progress error.
            store.cluster.ml.put_model(model_id, {"input": {"field_names": ["text_field"]}})
        deployment = deployments.start(
            model_id, deployment_id=inference_id, number_of_allocations=settings.get("num_allocations"),
            threads_per_allocation=settings.get("num_threads"),
            adaptive_allocations=settings.get("adaptive_allocations"), created_by_endpoint=inference_id)
        created = True
    try:
        _validate(store, deployment, task_type)
    except EsError:
        if created:
            deployments.stop(deployment.deployment_id, force=True)
        raise
    public: dict[str, Any] = {"num_allocations": deployment.number_of_allocations,
                              "num_threads": deployment.threads_per_allocation, "model_id": deployment.model_id}
    if deployment.adaptive_allocations is not None:
        public["adaptive_allocations"] = deployment.adaptive_allocations
        if settings.get("num_allocations") is None and deployment_id is None:
            del public["num_allocations"]
    if deployment_id is not None:
        public["deployment_id"] = deployment_id
    for key in ("long_document_strategy", "max_chunks_per_doc"):
        if key in settings:
            public[key] = settings[key]
    return {"service_settings": public, "deployment_id": deployment.deployment_id, "created_deployment": created}


def _validate(store: InferenceStore, deployment: Any, task_type: str) -> None:
    """ES ModelValidatorBuilder: one inference call on the new endpoint; its task must fit the model."""
    model = store.cluster.ml.require_model(deployment.model_id)
    task = next(iter(model.config.get("inference_config", {})), None)
    expected = {"rerank": "text_similarity", "text_embedding": "text_embedding",
                "sparse_embedding": "text_expansion"}.get(task_type)
    if expected is not None and task not in (expected, None):
        raise StatusException(f"Task type [{task_type}] is not compatible with trained model [{model.model_id}] of "
                              f"type [{task}]", 400)
    update = {"text": "test", "results_field": "predicted_value"} if task_type == "rerank" else None
    store.cluster.ml.deployments.infer_texts(deployment, ["test"], update)


def update_endpoint(store: InferenceStore, inference_id: str, path_task_type: str | None,
                    body: dict[str, Any]) -> dict[str, Any]:
    if inference_id in PRECONFIGURED and inference_id not in store.endpoints:
        raise StatusException(f"Cannot update inference endpoint [{inference_id}]: preconfigured endpoints cannot "
                              f"be updated", 400)
    endpoint = store.endpoints.get(inference_id)
    if endpoint is None:
        # ES Messages.INFERENCE_ENTITY_NON_EXISTANT_NO_UPDATE
        raise ResourceNotFound(f"The inference endpoint [{inference_id}] does not exist and cannot be updated")
    for key in body:
        if key not in ("service_settings", "task_settings", "task_type"):
            raise StatusException(f"Unknown settings [{key}] in the update request; only [service_settings] and "
                                  f"[task_settings] can be updated", 400)
    task_type = resolve_task_type(path_task_type, body.get("task_type")) if (path_task_type or body.get("task_type")) \
        else endpoint["task_type"]
    if task_type != endpoint["task_type"]:
        raise StatusException("Task type must match the task type of the existing endpoint", 400)
    new_settings = dict(body.get("service_settings") or {})
    updated = copy.deepcopy(endpoint)
    if endpoint["service"] in svc.ELASTICSEARCH:
        extra = {k: v for k, v in new_settings.items() if k not in ("num_allocations", "adaptive_allocations")}
        if extra:  # model_id, num_threads, deployment_id... are immutable (updateServiceSettings leaves them unused)
            raise svc.unknown_settings(endpoint["service"], extra)
        if new_settings:
            _update_deployment(store, endpoint, new_settings)
            deployment = store.cluster.ml.deployments.by_id[endpoint["deployment_id"]]
            settings = updated["service_settings"]
            adaptive = deployment.adaptive_allocations
            if adaptive and adaptive.get("enabled"):
                settings["adaptive_allocations"] = adaptive
                if "num_allocations" not in new_settings:
                    settings.pop("num_allocations", None)
            else:
                settings.pop("adaptive_allocations", None)
                settings["num_allocations"] = deployment.number_of_allocations
    else:
        public, secrets = svc.split_secrets(new_settings)
        extra = {k: v for k, v in public.items() if k not in ("rate_limit",)}
        if extra:
            raise svc.unknown_settings(endpoint["service"], extra)
        updated["service_settings"].update(public)
        updated["secrets"] = {**endpoint.get("secrets", {}), **secrets}
    if body.get("task_settings"):
        updated["task_settings"] = {**(endpoint.get("task_settings") or {}), **body["task_settings"]}
    store.endpoints[inference_id] = updated
    return store.public(updated)


def _update_deployment(store: InferenceStore, endpoint: dict[str, Any], settings: dict[str, Any]) -> None:
    inference_id, deployment_id = endpoint["inference_id"], endpoint["deployment_id"]
    deployments = store.cluster.ml.deployments
    if deployment_id not in deployments.by_id:
        raise ResourceNotFound(f"Cannot update inference endpoint [{inference_id}]: its model deployment "
                               f"[{deployment_id}] is not running")
    if not endpoint.get("created_deployment"):
        owner = deployments.by_id[deployment_id].created_by_endpoint
        if owner is not None:
            raise StatusException(f"Cannot update inference endpoint [{inference_id}] for model deployment "
                                  f"[{deployment_id}] as it was created by another inference endpoint. The model can "
                                  f"only be updated using inference endpoint id [{owner}].", 409)
        raise StatusException(f"Cannot update inference endpoint [{inference_id}] using model deployment "
                              f"[{deployment_id}]. The model deployment must be updated through the trained models "
                              f"API.", 409)
    deployments.update(deployment_id, number_of_allocations=settings.get("num_allocations"),
                       adaptive_allocations=settings.get("adaptive_allocations"), from_inference_api=True)
