"""Inference services: how each `service` validates its settings and answers inference.

- `elasticsearch` (and its old name `elser`): runs a trained model deployed on the simulated ML node.
- `test_reranking_service` / `test_service`: Elasticsearch's own TEST plugins (x-pack/plugin/inference/qa/
  test-service-plugin), present only so ES's YAML tests run here; a real cluster has them only in ES's test builds.
- every other known service (openai, cohere, ...): stored with its secrets; calling it fails, as the sandbox has
  no network to reach the provider.
Evidence: ES TransportPutInferenceModelAction, ElasticsearchInternalServiceSettings, TestRerankingServiceExtension.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.errors import EsError, IllegalArgument, StatusException

TASK_TYPES = ("text_embedding", "sparse_embedding", "rerank", "completion", "chat_completion", "any")
ELASTICSEARCH = ("elasticsearch", "elser")
TEST_SERVICES = ("test_reranking_service", "test_service")
# Known third-party services and the secret keys each keeps out of GET responses.
EXTERNAL_SECRETS: dict[str, tuple[str, ...]] = {
    "openai": ("api_key",), "cohere": ("api_key",), "hugging_face": ("api_key",), "azureopenai": ("api_key",
                                                                                                   "entra_id"),
    "azureaistudio": ("api_key",), "googleaistudio": ("api_key",), "googlevertexai": ("service_account_json",),
    "mistral": ("api_key",), "anthropic": ("api_key",), "amazonbedrock": ("access_key", "secret_key"),
    "alibabacloud-ai-search": ("api_key",), "watsonxai": ("api_key",), "jinaai": ("api_key",),
    "voyageai": ("api_key",), "deepseek": ("api_key",), "elastic": (), "custom": ("secret_parameters",),
    "amazon_sagemaker": ("access_key", "secret_key"), "llama": ("api_key",), "ai21": ("api_key",),
}
SECRET_KEYS = {"api_key", "secret_key", "access_key", "service_account_json", "entra_id", "secret_parameters"}
DEFAULT_CHUNKING = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
# ElasticsearchInternalService: the ELSER and E5 models it knows (other model ids are "custom eland" models), and
# the variants the sandbox's cluster (linux-x86_64, like its preconfigured endpoints) picks by default.
ELSER_MODELS = {".elser_model_1", ".elser_model_2", ".elser_model_2_linux-x86_64"}
E5_MODELS = {".multilingual-e5-small", ".multilingual-e5-small_linux-x86_64"}
DEFAULT_ELSER_MODEL = ".elser_model_2_linux-x86_64"
_ES_SETTINGS = {"model_id", "num_allocations", "num_threads", "adaptive_allocations", "deployment_id",
                "long_document_strategy", "max_chunks_per_doc"}


def check_task_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise EsError(f"Unknown task_type [{task_type}]", status=400, type="status_exception")


def known_service(service: str) -> bool:
    return service in ELASTICSEARCH or service in TEST_SERVICES or service in EXTERNAL_SECRETS


def split_secrets(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in settings.items() if k not in SECRET_KEYS}
    secrets = {k: v for k, v in settings.items() if k in SECRET_KEYS}
    return public, secrets


def unknown_settings(service: str, extra: dict[str, Any]) -> StatusException:
    # ES ServiceUtils.throwIfNotEmptyMap; the map is printed Java-style {k=v}
    # secret values are never echoed, even where ES would print them
    shown = ", ".join(f"{k}={'<redacted>' if k in SECRET_KEYS else v}" for k, v in extra.items())
    return StatusException(f"Configuration contains settings [{{{shown}}}] unknown to the [{service}] service", 400)


def validation_error(*problems: str) -> EsError:
    numbered = "".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
    return EsError(f"Validation Failed: {numbered}", status=400, type="validation_exception")


def default_model_id(service: str, settings: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """ElasticsearchInternalService#parseRequestConfig: without model_id (and deployment_id), the `elser` service
    takes the cluster's ELSER v2 variant with a deprecation warning; the `elasticsearch` service refuses."""
    if settings.get("model_id") is not None or settings.get("deployment_id") is not None:
        return settings
    if service != "elser":
        raise IllegalArgument("Error parsing service settings, model_id must be provided")
    warnings.append("Putting elasticsearch service inference endpoints (including elser service) without a model_id "
                    "field is deprecated and will be removed in a future release. Please specify a model_id field.")
    return {**settings, "model_id": DEFAULT_ELSER_MODEL}


def parse_task_settings(model_id: str | None, task_type: str, task_settings: dict[str, Any]) -> dict[str, Any]:
    """ElasticsearchInternalService: ELSER and E5 endpoints keep no task settings (ElserMlNodeTaskSettings.DEFAULT;
    what is sent is ignored); a custom eland model takes only `return_documents` (rerank,
    CustomElandRerankTaskSettings) and anything else is refused by throwIfNotEmptyMap(taskSettingsMap)."""
    if model_id in ELSER_MODELS or model_id in E5_MODELS:
        return {}
    allowed = {"return_documents"} if task_type == "rerank" else set()
    extra = {k: v for k, v in task_settings.items() if k not in allowed}
    if extra:
        raise unknown_settings("elasticsearch", extra)
    return task_settings


def parse_elasticsearch_settings(settings: dict[str, Any], task_type: str) -> dict[str, Any]:
    """ElasticsearchInternalServiceSettings.fromRequestMap: num_threads required (power of 2, at most 32) unless
    attaching to a deployment; num_allocations or adaptive_allocations; unknown keys refused."""
    extra = {k: v for k, v in settings.items() if k not in _ES_SETTINGS}
    if extra:
        raise unknown_settings("elasticsearch", extra)
    problems = []
    if settings.get("deployment_id") is None:
        if settings.get("model_id") is None:
            problems.append("[service_settings] does not contain the required setting [model_id]")
        threads = settings.get("num_threads")
        if threads is None:
            problems.append("[service_settings] does not contain the required setting [num_threads]")
        elif not isinstance(threads, int) or threads < 1 or threads > 32 or threads & (threads - 1):
            problems.append(f"Invalid value [{threads}]. [num_threads] must be a power of 2 between 1 and 32")
        adaptive = settings.get("adaptive_allocations")
        allocations = settings.get("num_allocations")
        if allocations is None and not (adaptive and adaptive.get("enabled")):
            problems.append("[service_settings] does not contain one of the required settings [num_allocations, "
                            "adaptive_allocations]")
        if allocations is not None and (not isinstance(allocations, int) or allocations < 1):
            problems.append(f"Invalid value [{allocations}]. [num_allocations] must be a positive integer")
    strategy = settings.get("long_document_strategy")
    if strategy is not None and (task_type != "rerank" or strategy not in ("truncate", "chunk")):
        problems.append(f"Invalid value [{strategy}] received. [long_document_strategy] must be one of "
                        f"[chunk, truncate]" if task_type == "rerank"
                        else "[long_document_strategy] is only supported for the rerank task")
    if problems:
        raise validation_error(*problems)
    return dict(settings)


def test_rerank_scores(query: str, texts: list[str]) -> list[float]:
    """ES TestRerankingServiceExtension: the score is float(text) when every input parses as a float; otherwise
    scores start at a pseudo-random minimum in [-1, 1) and step by 0.2, the last input scoring highest."""
    try:
        return [float(t) for t in texts]
    except ValueError:
        seed = int(hashlib.sha256(query.encode()).hexdigest()[:8], 16)
        minimum = (seed % 2000) / 1000 - 1
        return [minimum + 0.2 * i for i in range(len(texts))]


def test_sparse_embedding(text: str) -> dict[str, float]:
    """Stand-in for ES's test_service sparse embeddings: a few deterministic weighted features per text."""
    digest = hashlib.sha256(text.encode()).digest()
    return {f"feature_{i}": round(1 + digest[i] / 255, 4) for i in range(5)}


def external_failure(service: str, inference_id: str) -> StatusException:
    """A stored third-party endpoint cannot be called: there is no network to reach the provider."""
    return StatusException(f"Failed to send request to the [{service}] service for inference endpoint "
                           f"[{inference_id}]: the sandbox has no network access to third-party providers", 500)
