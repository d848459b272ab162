"""HTTP routes of the trained models API (`/_ml/trained_models/...`): parsing requests, shaping responses.

The rules live in store.py (models, aliases) and deployments.py (deployments, inference).
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

from sandbox.errors import EsError, StatusException
from sandbox.http import EsRequest, Route
from sandbox.ml.info import ROUTES as _INFO_ROUTES
from sandbox.ml.store import LANG_IDENT, MlStore, TrainedModel

# exclude_generated=true drops what ES generates (TrainedModelConfig.toXContent with EXCLUDE_GENERATED)
_GENERATED = ("created_by", "version", "create_time", "estimated_operations", "license_level",
              "estimated_heap_memory_usage_bytes", "model_size_bytes")
_BASE_OVERHEAD = 240 * 1024 * 1024  # ES StartTrainedModelDeploymentAction.MEMORY_OVERHEAD [K]


def _ml(sb: Any) -> MlStore:
    return sb.cluster.ml


# ---- models -----------------------------------------------------------------------------------------------------

def put_model(sb: Any, req: EsRequest, model_id: str) -> dict:
    return _ml(sb).put_model(model_id, req.json_object(),
                             defer_decompression=req.flag("defer_definition_decompression"),
                             wait_for_completion=req.flag("wait_for_completion"))


def _render(store: MlStore, model: TrainedModel, req: EsRequest, includes: set[str]) -> dict[str, Any]:
    config = json.loads(json.dumps(model.config))  # deep copy: responses never alias stored state
    aliases = store.aliases_of(model.model_id)
    if aliases:
        config.setdefault("metadata", {})["model_aliases"] = aliases
    if "definition_status" in includes:
        config["fully_defined"] = model.fully_defined(store.cluster.pace.ml_refresh_seconds)
    if "definition" in includes and model.compressed_definition is not None:
        if req.flag("decompress_definition", True):
            config["definition"] = json.loads(gzip.decompress(base64.b64decode(model.compressed_definition)))
        else:
            config["compressed_definition"] = model.compressed_definition
    if req.flag("exclude_generated"):
        for key in _GENERATED:
            config.pop(key, None)
    return config


def get_models(sb: Any, req: EsRequest, model_id: str | None = None) -> dict:
    store = _ml(sb)
    includes = set(req.list_arg("include") or [])
    if req.flag("include_model_definition"):
        includes.add("definition")
    models = store.expand(model_id, allow_no_match=req.flag("allow_no_match", True))
    tags = req.list_arg("tags") or []
    models = [m for m in models if all(t in (m.config.get("tags") or []) for t in tags)]
    if "definition_status" in includes:
        if len(models) > 1 or model_id in (None, "_all", "*"):
            raise StatusException("Getting the model download status is not supported when getting more than one "
                                  "model", 400)
        if models and models[0].model_type != "pytorch":
            raise StatusException("Definition status is only relevant to PyTorch model types", 400)
    if "definition" in includes and len(models) > 1:
        raise StatusException("Getting model definition is not supported when getting more than one model", 400)
    start, size = req.int_arg("from", 0) or 0, req.int_arg("size", 100)
    page = models[start:start + (size if size is not None else 100)]
    return {"count": len(models), "trained_model_configs": [_render(store, m, req, includes) for m in page]}


def delete_model(sb: Any, req: EsRequest, model_id: str) -> dict:
    _ml(sb).delete_model(model_id, force=req.flag("force"))
    return {"acknowledged": True}


def put_definition_part(sb: Any, req: EsRequest, model_id: str, part: int) -> dict:
    """Runs without the cluster lock (its route says locked=False): parts of 1 MiB are parsed and checked in
    parallel, and only the store itself takes the lock, as ES indexes parts concurrently."""
    body = req.json_object()
    raw_length = MlStore.check_definition_part(part, body)
    with sb.cluster.lock:
        _ml(sb).store_definition_part(model_id, part, body, raw_length)
    return {"acknowledged": True}


def put_vocabulary(sb: Any, req: EsRequest, model_id: str) -> dict:
    _ml(sb).put_vocabulary(model_id, req.json_object())
    return {"acknowledged": True}


def put_alias(sb: Any, req: EsRequest, model_id: str, model_alias: str) -> dict:
    _ml(sb).put_alias(model_alias, model_id, reassign=req.flag("reassign"))
    return {"acknowledged": True}


def delete_alias(sb: Any, req: EsRequest, model_id: str, model_alias: str) -> dict:
    _ml(sb).delete_alias(model_alias, model_id)
    return {"acknowledged": True}


# ---- stats ------------------------------------------------------------------------------------------------------

def _stats_entries(store: MlStore, model: TrainedModel) -> list[dict[str, Any]]:
    deployments = store.deployments.of_model(model.model_id)
    pipelines = store.pipelines_referencing(model.model_id)
    native = _BASE_OVERHEAD + 2 * (model.total_length or 0) if model.model_type == "pytorch" else 0
    base = {
        "model_id": model.model_id,
        "model_size_stats": {"model_size_bytes": model.total_length or model.config.get("model_size_bytes", 0),
                             "required_native_memory_bytes": native},
        "pipeline_count": len(pipelines),
        "inference_stats": {"failure_count": sum(d.error_count for d in deployments),
                            "inference_count": sum(d.inference_count for d in deployments),
                            "cache_miss_count": sum(d.inference_count - d.cache_hits for d in deployments),
                            "missing_all_fields_count": 0, "timestamp": int(time.time() * 1000)},
    }
    if pipelines:
        base["ingest"] = {"total": {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0},
                          "pipelines": {p: {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0,
                                            "processors": []} for p in pipelines}}
    if not deployments:
        return [base]
    return [{**base, "deployment_stats": store.deployments.deployment_stats(d)} for d in deployments]


def get_stats(sb: Any, req: EsRequest, model_id: str | None = None) -> dict:
    """Ids may also name deployments (ES docs: <model_id_or_deployment_id>; a model id takes precedence)."""
    store = _ml(sb)
    parts = [p for p in (model_id or "_all").split(",") if p]
    only: dict[str, set[str]] = {}  # model id -> the deployments asked for by deployment id
    model_parts = []
    for part in parts:
        deployment = store.deployments.by_id.get(part)
        if deployment is not None and store.get_model(part) is None:
            only.setdefault(deployment.model_id, set()).add(part)
        else:
            model_parts.append(part)
    models = store.expand(",".join(model_parts), allow_no_match=req.flag("allow_no_match", True)) \
        if model_parts else []
    whole = {m.model_id for m in models}
    for extra in only:
        if extra not in whole and store.get_model(extra) is not None:
            models.append(store.get_model(extra))
    models.sort(key=lambda m: m.model_id)
    start, size = req.int_arg("from", 0) or 0, req.int_arg("size", 100)
    page = models[start:start + (size if size is not None else 100)]
    entries = []
    for model in page:
        for entry in _stats_entries(store, model):
            wanted = only.get(model.model_id) if model.model_id not in whole else None
            if wanted is None or entry.get("deployment_stats", {}).get("deployment_id") in wanted:
                entries.append(entry)
    return {"count": len(models), "trained_model_stats": entries}


# ---- deployments ------------------------------------------------------------------------------------------------

def start_deployment(sb: Any, req: EsRequest, model_id: str) -> dict:
    body = req.json_object()
    store = _ml(sb)
    # Query parameters win over the body (ES RestStartTrainedModelDeploymentAction accepts both)
    def pick(name: str) -> Any:
        return req.args.get(name) if name in req.args else body.get(name)

    def as_int(name: str) -> int | None:
        value = pick(name)
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise EsError(f"Failed to parse int parameter [{name}] with value [{value}]", status=400,
                          type="illegal_argument_exception") from exc

    cache_size = pick("cache_size")
    deployment = store.deployments.start(
        model_id, deployment_id=pick("deployment_id"), number_of_allocations=as_int("number_of_allocations"),
        threads_per_allocation=as_int("threads_per_allocation"), queue_capacity=as_int("queue_capacity"),
        cache_size=str(cache_size) if cache_size is not None else None, priority=pick("priority"),
        wait_for=pick("wait_for"), adaptive_allocations=body.get("adaptive_allocations"),
    )
    return {"assignment": store.deployments.assignment(deployment)}


def stop_deployment(sb: Any, req: EsRequest, model_id: str) -> dict:
    body = req.json_object()
    force = req.flag("force", bool(body.get("force", False)))
    allow_no_match = req.flag("allow_no_match", bool(body.get("allow_no_match", True)))
    _ml(sb).deployments.stop(model_id, force=force, allow_no_match=allow_no_match)
    return {"stopped": True}


def update_deployment(sb: Any, req: EsRequest, model_id: str) -> dict:
    body = req.json_object()
    for key in body:
        if key not in ("number_of_allocations", "adaptive_allocations"):
            raise EsError(f"[update_trained_model_deployment_request] unknown field [{key}]", status=400,
                          type="x_content_parse_exception")
    allocations = req.int_arg("number_of_allocations", body.get("number_of_allocations"))
    store = _ml(sb)
    deployment = store.deployments.update(model_id, number_of_allocations=allocations,
                                          adaptive_allocations=body.get("adaptive_allocations"))
    endpoint = deployment.created_by_endpoint
    if endpoint is not None:
        sb.cluster.inference.sync_allocations(endpoint, deployment)
    return {"assignment": store.deployments.assignment(deployment)}


def infer(sb: Any, req: EsRequest, model_id: str) -> dict:
    body = req.json_object()
    docs = body.get("docs")
    if not isinstance(docs, list) or not docs:
        raise EsError("[docs] must not be empty", status=400, type="action_request_validation_exception")
    results = _ml(sb).deployments.infer(model_id, docs, body.get("inference_config"))
    return {"inference_results": results}


def clear_cache(sb: Any, req: EsRequest, model_id: str) -> dict:
    deployment = _ml(sb).deployments.by_id.get(model_id)
    if deployment is None:
        from sandbox.ml.deployments import missing_deployment

        raise missing_deployment(model_id)
    deployment.cache.clear()
    return {"cleared": True}


_T = "/_ml/trained_models"
ROUTES = [
    Route(("GET",), f"{_T}/_stats", get_stats, api="ml.get_trained_models_stats"),
    Route(("GET",), f"{_T}/<model_id>/_stats", get_stats, api="ml.get_trained_models_stats"),
    Route(("GET",), _T, get_models, api="ml.get_trained_models"),
    Route(("GET",), f"{_T}/<model_id>", get_models, api="ml.get_trained_models"),
    Route(("PUT",), f"{_T}/<model_id>", put_model, api="ml.put_trained_model"),
    Route(("DELETE",), f"{_T}/<model_id>", delete_model, api="ml.delete_trained_model"),
    Route(("PUT",), f"{_T}/<model_id>/definition/<int:part>", put_definition_part,
          api="ml.put_trained_model_definition_part", locked=False),
    Route(("PUT",), f"{_T}/<model_id>/vocabulary", put_vocabulary, api="ml.put_trained_model_vocabulary"),
    Route(("PUT", "POST"), f"{_T}/<model_id>/model_aliases/<model_alias>", put_alias, api="ml.put_trained_model_alias"),
    Route(("DELETE",), f"{_T}/<model_id>/model_aliases/<model_alias>", delete_alias,
          api="ml.delete_trained_model_alias"),
    Route(("POST",), f"{_T}/<model_id>/deployment/_start", start_deployment, api="ml.start_trained_model_deployment"),
    Route(("POST",), f"{_T}/<model_id>/deployment/_stop", stop_deployment, api="ml.stop_trained_model_deployment"),
    Route(("POST",), f"{_T}/<model_id>/deployment/_update", update_deployment,
          api="ml.update_trained_model_deployment"),
    Route(("POST",), f"{_T}/<model_id>/deployment/cache/_clear", clear_cache,
          api="ml.clear_trained_model_deployment_cache"),
    # ES: .../deployment/_infer is the deprecated spelling of .../_infer (same handler)
    Route(("POST",), f"{_T}/<model_id>/_infer", infer, writes=False, api="ml.infer_trained_model"),
    Route(("POST",), f"{_T}/<model_id>/deployment/_infer", infer, writes=False, api="ml.infer_trained_model"),
    *_INFO_ROUTES,
]

__all__ = ["ROUTES", "LANG_IDENT"]
