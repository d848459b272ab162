"""HTTP routes of the inference API (`/_inference/...`). Rules live in store.py and create.py."""

from __future__ import annotations

from typing import Any

from sandbox.errors import EsError
from sandbox.http import EsRequest, Reply, Route, warning_headers
from sandbox.inference.services import check_task_type
from sandbox.inference.store import InferenceStore

# ES's test_reranking_service scores inputs that all parse as floats with their value (services.test_rerank_scores)
CLUSTER_FEATURES = {"test_reranking_service.parse_text_as_score"}


def _store(sb: Any) -> InferenceStore:
    return sb.cluster.inference


def put_endpoint(sb: Any, req: EsRequest, inference_id: str, task_type: str | None = None) -> Reply:
    warnings: list[str] = []
    try:
        created = _store(sb).put(inference_id, task_type, req.json_object(), warnings)
    except EsError as error:  # ES's deprecation warnings ride on the thread context: errors carry them too
        error.headers = {**error.headers, **warning_headers(sb.cluster.version, warnings)}
        raise
    return Reply(created, headers=warning_headers(sb.cluster.version, warnings))


def get_endpoints(sb: Any, req: EsRequest, inference_id: str | None = None, task_type: str | None = None) -> dict:
    return {"endpoints": _store(sb).get(inference_id, task_type)}


def get_by_task_type(sb: Any, req: EsRequest, task_type: str) -> dict:
    """GET /_inference/{x}: x is a task type when it names one (then: all endpoints of that type), else an id."""
    try:
        check_task_type(task_type)
    except EsError:
        return {"endpoints": _store(sb).get(task_type)}
    return {"endpoints": _store(sb).get(None, task_type)}


def delete_endpoint(sb: Any, req: EsRequest, inference_id: str, task_type: str | None = None) -> dict:
    return _store(sb).delete(inference_id, task_type, force=req.flag("force"), dry_run=req.flag("dry_run"))


def update_endpoint(sb: Any, req: EsRequest, inference_id: str, task_type: str | None = None) -> dict:
    return _store(sb).update(inference_id, task_type, req.json_object())


def perform(sb: Any, req: EsRequest, inference_id: str, task_type: str | None = None) -> dict:
    return _store(sb).infer(inference_id, task_type, req.json_object())


ROUTES = [
    Route(("GET",), "/_inference", get_endpoints, api="inference.get"),
    Route(("GET",), "/_inference/_all", get_endpoints, api="inference.get"),
    Route(("GET",), "/_inference/<task_type>", get_by_task_type, api="inference.get"),
    Route(("GET",), "/_inference/<task_type>/_all", lambda sb, req, task_type: get_endpoints(sb, req, None, task_type),
          api="inference.get"),
    Route(("GET",), "/_inference/<task_type>/<inference_id>", get_endpoints, api="inference.get"),
    Route(("PUT",), "/_inference/<inference_id>", put_endpoint, api="inference.put"),
    Route(("PUT",), "/_inference/<task_type>/<inference_id>", put_endpoint, api="inference.put"),
    Route(("PUT", "POST"), "/_inference/<inference_id>/_update", update_endpoint, api="inference.update"),
    Route(("PUT", "POST"), "/_inference/<task_type>/<inference_id>/_update", update_endpoint, api="inference.update"),
    Route(("DELETE",), "/_inference/<inference_id>", delete_endpoint, api="inference.delete"),
    Route(("DELETE",), "/_inference/<task_type>/<inference_id>", delete_endpoint, api="inference.delete"),
    Route(("POST",), "/_inference/<inference_id>", perform, writes=False, api="inference.inference"),
    Route(("POST",), "/_inference/<task_type>/<inference_id>", perform, writes=False, api="inference.inference"),
]
