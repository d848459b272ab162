"""Inference endpoints: create (deploying `elasticsearch` models), get, update, delete, perform inference.

Contract used by other areas -- keep these names stable:
  InferenceStore.rerank(inference_id, query, texts) -> list[float]   raw scores in input order (the
      text_similarity_reranker retriever calls exactly this); 404 "Inference endpoint not found [x]", 400 when
      the endpoint's task type is not rerank.
  InferenceStore.endpoints: dict[str, dict]        stored endpoints (secrets under "secrets", never returned)
  InferenceStore.endpoints_using_deployment(id)    endpoints created on or attached to an ML deployment

dump()/load(): endpoints with their secrets (the state file is the cluster's own storage, as ES keeps secrets in
its .secrets-inference index). Deployments an endpoint created are restored by the ML store (lazily reloaded).
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.errors import EsError, ResourceAlreadyExists, ResourceNotFound, StatusException
from sandbox.inference import services as svc
from sandbox.inference.create import create_endpoint, update_endpoint
from sandbox.inference.preconfigured import PRECONFIGURED, preconfigured_endpoints
from sandbox.inference.services import check_task_type


def not_found(inference_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"Inference endpoint not found [{inference_id}]")


class InferenceStore:
    def __init__(self, cluster: Any):
        self.cluster = cluster
        self.reset()

    def reset(self) -> None:
        self.endpoints: dict[str, dict[str, Any]] = {}

    def dump(self) -> dict[str, Any]:
        return {"endpoints": copy.deepcopy(self.endpoints)}

    def load(self, data: dict[str, Any]) -> None:
        self.endpoints = copy.deepcopy(data.get("endpoints", {}))

    # ---- views -------------------------------------------------------------------------------------------------
    @staticmethod
    def public(endpoint: dict[str, Any]) -> dict[str, Any]:
        """ModelConfigurations.toFilteredXContent: no secrets; empty task_settings omitted."""
        body = {k: copy.deepcopy(endpoint[k]) for k in ("inference_id", "task_type", "service", "service_settings")}
        if endpoint.get("chunking_settings"):
            body["chunking_settings"] = copy.deepcopy(endpoint["chunking_settings"])
        if endpoint.get("task_settings"):
            body["task_settings"] = copy.deepcopy(endpoint["task_settings"])
        return body

    def all_endpoints(self) -> dict[str, dict[str, Any]]:
        merged = {e["inference_id"]: e for e in preconfigured_endpoints()}
        merged.update(self.endpoints)
        return merged

    def get(self, inference_id: str | None, task_type: str | None = None) -> list[dict[str, Any]]:
        if task_type is not None:
            check_task_type(task_type)
        everything = self.all_endpoints()
        if inference_id in (None, "_all", "*"):
            chosen = [e for _, e in sorted(everything.items()) if task_type in (None, e["task_type"])]
            return [self.public(e) for e in chosen]
        endpoint = everything.get(inference_id)
        if endpoint is None:
            raise not_found(inference_id)
        if task_type is not None and endpoint["task_type"] != task_type:
            raise StatusException(f"Requested task type [{task_type}] does not match the inference endpoint's task "
                                  f"type [{endpoint['task_type']}]", 400)
        return [self.public(endpoint)]

    def require(self, inference_id: str) -> dict[str, Any]:
        endpoint = self.all_endpoints().get(inference_id)
        if endpoint is None:
            raise not_found(inference_id)
        return endpoint

    def endpoints_using_deployment(self, deployment_id: str) -> list[str]:
        return sorted(i for i, e in self.endpoints.items()
                      if e["service"] in svc.ELASTICSEARCH and e.get("deployment_id") == deployment_id)

    # ---- create ------------------------------------------------------------------------------------------------
    def put(self, inference_id: str, path_task_type: str | None, body: dict[str, Any],
            warnings: list[str] | None = None) -> dict[str, Any]:
        return create_endpoint(self, inference_id, path_task_type, body, warnings)

    # ---- update (TransportUpdateInferenceModelAction) ------------------------------------------------------------
    def update(self, inference_id: str, path_task_type: str | None, body: dict[str, Any]) -> dict[str, Any]:
        return update_endpoint(self, inference_id, path_task_type, body)

    def sync_allocations(self, inference_id: str, deployment: Any) -> None:
        """An ML-API update of an endpoint's deployment (allowed before 9.2) shows in the endpoint's settings."""
        endpoint = self.endpoints.get(inference_id)
        if endpoint is not None:
            settings = endpoint["service_settings"]
            if deployment.adaptive_allocations is not None:
                settings["adaptive_allocations"] = deployment.adaptive_allocations
            if "num_allocations" in settings or deployment.adaptive_allocations is None:
                settings["num_allocations"] = deployment.number_of_allocations

    # ---- delete (TransportDeleteInferenceEndpointAction) ---------------------------------------------------------
    def references(self, inference_id: str) -> tuple[list[str], list[str]]:
        pipelines = self.cluster.ml.pipeline_references({inference_id})
        indexes = []
        indices = getattr(self.cluster.indices, "indices", {}) or {}
        for name, index in sorted(indices.items()):
            if inference_id in _semantic_text_ids(getattr(index, "mappings", {}) or {}):
                indexes.append(name)
        return pipelines, indexes

    def delete(self, inference_id: str, task_type: str | None, *, force: bool, dry_run: bool) -> dict[str, Any]:
        if task_type is not None:
            check_task_type(task_type)
        if inference_id in PRECONFIGURED and inference_id not in self.endpoints:
            if not force:
                raise StatusException(f"[{inference_id}] is a reserved inference endpoint. Use the force=true query "
                                      f"parameter to delete the inference endpoint.", 400)
            return {"acknowledged": True, "pipelines": [], "indexes": []}
        endpoint = self.endpoints.get(inference_id)
        if endpoint is None:
            raise not_found(inference_id)
        if task_type is not None and task_type != endpoint["task_type"]:
            raise StatusException(f"Requested task type [{task_type}] does not match the inference endpoint's task "
                                  f"type [{endpoint['task_type']}]", 400)
        pipelines, indexes = self.references(inference_id)
        message = _reference_message(inference_id, pipelines, indexes)
        if dry_run:
            reply: dict[str, Any] = {"acknowledged": False, "pipelines": pipelines, "indexes": indexes}
            if message:
                reply["error_message"] = message
            return reply
        if message and not force:
            raise StatusException(message, 409)
        if endpoint["service"] in svc.ELASTICSEARCH and endpoint.get("created_deployment"):
            # ES BaseElasticsearchInternalService.stop: force-stops the deployment it created (id = endpoint id),
            # never one it only attached to, and never deletes the model.
            self.cluster.ml.deployments.stop(endpoint["deployment_id"], force=True)
        del self.endpoints[inference_id]
        return {"acknowledged": True, "pipelines": pipelines, "indexes": indexes}

    # ---- inference -----------------------------------------------------------------------------------------------
    def rerank(self, inference_id: str, query: str, texts: list[str]) -> list[float]:
        endpoint = self.require(inference_id)
        if endpoint["task_type"] != "rerank":
            raise StatusException(f"Incompatible task_type, the requested type [rerank] does not match the model "
                                  f"type [{endpoint['task_type']}]", 400)
        return self._rerank_scores(endpoint, query, texts)

    def _rerank_scores(self, endpoint: dict[str, Any], query: str, texts: list[str]) -> list[float]:
        service = endpoint["service"]
        if service == "test_reranking_service":
            return svc.test_rerank_scores(query, texts)
        if service in svc.ELASTICSEARCH:
            deployment = self._deployment(endpoint)
            results = self.cluster.ml.deployments.infer_texts(
                deployment, texts, {"text": query, "results_field": "predicted_value"})
            return [r["predicted_value"] for r in results]
        raise svc.external_failure(service, endpoint["inference_id"])

    def _deployment(self, endpoint: dict[str, Any]) -> Any:
        inference_id = endpoint["inference_id"]
        if inference_id in PRECONFIGURED and inference_id not in self.endpoints:
            model_id = endpoint["service_settings"]["model_id"]
            ml = self.cluster.ml
            if ml.get_model(model_id) is None:
                # ES deploys a preconfigured endpoint's model on first use: it PUTs the model package (which starts
                # a download) and then starts it. Without network the download never completes, so the start fails
                # with ES's download-in-progress error (TransportStartTrainedModelDeploymentAction).
                ml.put_model(model_id, {"input": {"field_names": ["text_field"]}})
            ml.deployments.start(model_id, deployment_id=inference_id, created_by_endpoint=inference_id)
        deployment = self.cluster.ml.deployments.by_id.get(endpoint.get("deployment_id", inference_id))
        if deployment is None:
            raise StatusException(f"Trained model deployment [{endpoint.get('deployment_id')}] is not allocated to "
                                  f"any nodes", 409)
        return deployment

    def infer(self, inference_id: str, path_task_type: str | None, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.require(inference_id)
        task_type = endpoint["task_type"]
        if path_task_type is not None:
            check_task_type(path_task_type)
            if path_task_type != task_type:
                raise StatusException(f"Incompatible task_type, the requested type [{path_task_type}] does not match "
                                      f"the model type [{task_type}]", 400)
        allowed = {"input", "query", "top_n", "return_documents", "task_settings", "input_type", "timeout"}
        for key in body:
            if key not in allowed:
                raise EsError(f"[inference_action] unknown field [{key}]", status=400, type="x_content_parse_exception")
        raw_input = body.get("input")
        if raw_input is None:
            raise EsError("Validation Failed: 1: Field [input] cannot be null;", status=400,
                          type="action_request_validation_exception")
        texts = [raw_input] if isinstance(raw_input, str) else list(raw_input)
        if not texts:
            raise EsError("Validation Failed: 1: Field [input] cannot be an empty array;", status=400,
                          type="action_request_validation_exception")
        if task_type == "rerank":
            query = body.get("query")
            if query is None:
                raise EsError("Validation Failed: 1: Field [query] cannot be null for task type [rerank];", status=400,
                              type="action_request_validation_exception")
            return {"rerank": self._rerank_response(endpoint, query, texts, body)}
        if endpoint["service"] == "test_service" and task_type == "sparse_embedding":
            return {"sparse_embedding": [{"is_truncated": False, "embedding": svc.test_sparse_embedding(t)}
                                         for t in texts]}
        if endpoint["service"] in svc.ELASTICSEARCH:
            deployment = self._deployment(endpoint)
            results = self.cluster.ml.deployments.infer_texts(deployment, texts, {"results_field": "predicted_value"})
            key = {"text_embedding": "text_embedding", "sparse_embedding": "sparse_embedding"}.get(task_type)
            if key == "text_embedding":
                return {key: [{"embedding": r["predicted_value"]} for r in results]}
            if key == "sparse_embedding":
                return {key: [{"is_truncated": False, "embedding": r["predicted_value"]} for r in results]}
            raise StatusException(f"the sandbox cannot run [{task_type}] on the elasticsearch service", 400)
        raise svc.external_failure(endpoint["service"], inference_id)

    def _rerank_response(self, endpoint: dict[str, Any], query: str, texts: list[str],
                         body: dict[str, Any]) -> list[dict[str, Any]]:
        scores = self._rerank_scores(endpoint, query, texts)
        task_settings = {**(endpoint.get("task_settings") or {}), **(body.get("task_settings") or {})}
        return_documents = body.get("return_documents", task_settings.get("return_documents", True))
        top_n = body.get("top_n", task_settings.get("top_n"))
        order = sorted(range(len(texts)), key=lambda i: scores[i], reverse=True)
        if top_n is not None:
            order = order[: int(top_n)]
        ranked = []
        for i in order:
            item: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
            if return_documents:
                item["text"] = texts[i]
            ranked.append(item)
        return ranked


def _semantic_text_ids(mappings: dict[str, Any]) -> set[str]:
    """inference ids named by semantic_text fields (9.x default: .elser-2-elasticsearch)."""
    ids: set[str] = set()

    def walk(properties: dict[str, Any]) -> None:
        for field in properties.values():
            if not isinstance(field, dict):
                continue
            if field.get("type") == "semantic_text":
                ids.add(field.get("inference_id", ".elser-2-elasticsearch"))
                if field.get("search_inference_id"):
                    ids.add(field["search_inference_id"])
            walk(field.get("properties") or {})
            walk(field.get("fields") or {})

    walk(mappings.get("properties") or {})
    return ids


def _reference_message(inference_id: str, pipelines: list[str], indexes: list[str]) -> str:
    # ES TransportDeleteInferenceEndpointAction.buildErrorString
    parts = []
    if pipelines:
        parts.append(f"Inference endpoint {inference_id} is referenced by pipelines: [{', '.join(pipelines)}]. Ensure "
                     f"that no pipelines are using this inference endpoint, or use force to ignore this warning and "
                     f"delete the inference endpoint.")
    if indexes:
        parts.append(f"Inference endpoint {inference_id} is being used in the mapping for indexes: "
                     f"[{', '.join(indexes)}]. Ensure that no index mappings are using this inference endpoint, or use "
                     f"force to ignore this warning and delete the inference endpoint.")
    return " ".join(parts)


__all__ = ["InferenceStore", "ResourceAlreadyExists", "not_found"]
