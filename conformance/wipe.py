"""Wiping the target between test sections, as the Java runner does after every test.

A sandbox answers POST /_sandbox/reset. A real cluster is wiped through its public APIs, in the spirit of
ESRestTestCase.wipeCluster: user indices, data streams, index and component templates, ingest pipelines,
inference endpoints (force), trained model deployments and trained models (force). Built-in resources
(names starting with "." and `_meta.managed: true` templates and pipelines) are kept.
"""

from __future__ import annotations

import contextlib
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

_JSON = {"accept": "application/json"}
# Models every cluster has and that cannot be deleted
_BUILTIN_MODELS = {"lang_ident_model_1"}


def is_sandbox(client: Elasticsearch) -> bool:
    # a GET, so that probing a real cluster can change nothing
    try:
        client.perform_request("GET", "/_sandbox/faults", headers=_JSON)
    except ApiError:
        return False
    return True


def wipe(client: Elasticsearch, sandbox: bool) -> None:
    if sandbox:
        client.perform_request("POST", "/_sandbox/reset", headers=_JSON)
        # ES's test clusters run with action.destructive_requires_name=false (testclusters ElasticsearchNode
        # baseConfig), and the YAML tests rely on it (indices.delete with wildcards); 9.x's default is true.
        client.perform_request("PUT", "/_cluster/settings", headers={**_JSON, "content-type": "application/json"},
                               body={"persistent": {"action.destructive_requires_name": False}})
        return
    _wipe_cluster(client)


def _get(client: Elasticsearch, path: str, params: dict | None = None) -> Any:
    try:
        return client.perform_request("GET", path, params=params, headers=_JSON).body
    except NotFoundError:
        return {}
    except BadRequestError as error:
        # Only a sandbox answers this (an API it does not implement, e.g. data streams): nothing to wipe there.
        # This lets the cluster wipe be tested against the sandbox; a real cluster never sends this type.
        if error.error == "sandbox_unsupported_exception":
            return {}
        raise


def _delete(client: Elasticsearch, path: str, params: dict | None = None) -> None:
    with contextlib.suppress(NotFoundError):
        client.perform_request("DELETE", path, params=params, headers=_JSON)


def _user_named(name: str) -> bool:
    return not name.startswith(".")


def _wipe_cluster(client: Elasticsearch) -> None:
    # Inference endpoints first: they own deployments and are referenced by semantic_text fields.
    for endpoint in (_get(client, "/_inference/_all") or {}).get("endpoints", []):
        if _user_named(endpoint["inference_id"]):
            _delete(client, f"/_inference/{endpoint['task_type']}/{endpoint['inference_id']}", {"force": "true"})
    for stats in (_get(client, "/_ml/trained_models/_all/_stats", {"size": 10000}) or {}).get(
            "trained_model_stats", []):
        deployment = (stats.get("deployment_stats") or {}).get("deployment_id")
        if deployment:
            client.perform_request("POST", f"/_ml/trained_models/{deployment}/deployment/_stop",
                                   params={"force": "true"}, headers=_JSON)
    # Data streams, then indices by name: `DELETE *` is refused under action.destructive_requires_name.
    for stream in (_get(client, "/_data_stream/*", {"expand_wildcards": "all"}) or {}).get("data_streams", []):
        if _user_named(stream["name"]):
            _delete(client, f"/_data_stream/{stream['name']}")
    names = sorted(_get(client, "/_settings/index.uuid", {"expand_wildcards": "all"}) or {})
    user_indices = [n for n in names if _user_named(n)]
    for start in range(0, len(user_indices), 50):
        _delete(client, "/" + ",".join(user_indices[start:start + 50]), {"expand_wildcards": "all"})
    for template in (_get(client, "/_index_template") or {}).get("index_templates", []):
        if _user_named(template["name"]) and not (template["index_template"].get("_meta") or {}).get("managed"):
            _delete(client, f"/_index_template/{template['name']}")
    for template in (_get(client, "/_component_template") or {}).get("component_templates", []):
        if _user_named(template["name"]) and not (template["component_template"].get("_meta") or {}).get("managed"):
            _delete(client, f"/_component_template/{template['name']}")
    for name in (_get(client, "/_template") or {}):
        if _user_named(name):
            _delete(client, f"/_template/{name}")
    for name, pipeline in (_get(client, "/_ingest/pipeline") or {}).items():
        if _user_named(name) and not (pipeline.get("_meta") or {}).get("managed"):
            _delete(client, f"/_ingest/pipeline/{name}")
    for model in (_get(client, "/_ml/trained_models", {"size": 10000}) or {}).get("trained_model_configs", []):
        model_id = model["model_id"]
        if _user_named(model_id) and model_id not in _BUILTIN_MODELS:
            for alias in (model.get("metadata") or {}).get("model_aliases", []) or []:
                _delete(client, f"/_ml/trained_models/{model_id}/model_aliases/{alias}")
            _delete(client, f"/_ml/trained_models/{model_id}", {"force": "true"})
