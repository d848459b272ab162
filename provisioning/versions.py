"""Version facts as data: which Elasticsearch versions have each feature the manifests can use, with the source.

Supported: Elasticsearch 8.15 and later 8.x, and 9.x (README "Requirements"). Each Fact names where a plan uses
the feature (the requests it will send, the checks' search bodies) and, per major line, the first version that has
it; a line that is not listed does not have it. `check_plan` refuses, before any write, a plan that uses a feature
the cluster's version lacks, naming the version that added it; an `adapt` fact is not refused but the request is
changed the documented way (a query parameter an older version does not know is left out).

Sources: "spec <branch>" is github.com/elastic/elasticsearch-specification at that branch (8.15 28a996c6525b,
8.16 3b41046de0c1, 8.17 6b832057e094, 8.18 532f7aa34e7a, 8.19 fc86362a50eb, 9.0 a12f710c609a, 9.1 e1e50ac8c672,
read 2026-11-30); `@availability` is the spec's own annotation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from typing import Any

from provisioning.model import Request

Version = tuple[int, int, int]

MINIMUM: Version = (8, 15, 0)
MINIMUM_SOURCE = ("the tutorial (Semantic Reranking with Elasticsearch and Hugging Face) targets 8.15+: the "
                  "text_similarity_reranker retriever and the elasticsearch-service rerank endpoint "
                  "(es-yaml-tests/_alt-versions/1b8ff294…/70_text_similarity_rank_retriever.yml: "
                  "\"text_similarity_reranker introduced in 8.15.0\")")


def parse(number: str | None) -> Version | None:
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", number or "")
    return tuple(int(x) for x in match.groups()) if match else None  # type: ignore[return-value]


def show(version: Version) -> str:
    return ".".join(str(x) for x in version)


@dataclass(frozen=True)
class Fact:
    key: str
    what: str  # for messages: "<what> needs Elasticsearch ..."
    since: dict[int, Version]  # major line -> first version of that line with the feature
    source: str
    uses: Callable[[Request], bool] = field(default=lambda _r: False)  # a planned request that uses it
    in_search: Callable[[Any], bool] = field(default=lambda _s: False)  # a check's search body that uses it
    adapt: Callable[[Request], Request] | None = None  # instead of refusing: the request for older versions

    def available(self, version: Version) -> bool:
        first = self.since.get(version[0])
        if first is not None:
            return version >= first
        # a later major than any listed has it when the newest listed line has it (features are not removed here)
        return bool(self.since) and version[0] > max(self.since)

    def needs(self) -> str:
        eight, nine = self.since.get(8), self.since.get(9)
        if eight and (nine is None or nine == (9, 0, 0)):
            return f"Elasticsearch {show(eight)} or later"
        if eight and nine:
            return f"Elasticsearch {show(eight)} or later on 8.x, {show(nine)} or later on 9.x"
        return f"Elasticsearch {show(nine or min(self.since.values()))} or later"


def _request(method: str, pattern: str, *, query: str | None = None,
             body: Callable[[Any], bool] | None = None) -> Callable[[Request], bool]:
    def uses(request: Request) -> bool:
        if request.method != method or not fnmatch(request.path, pattern) or request.path.count("/") != \
                pattern.count("/"):
            return False
        if query is not None and query not in request.query:
            return False
        return body is None or body(request.body)
    return uses


def _walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _semantic_text(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
    return lambda body: any(node.get("type") == "semantic_text" and predicate(node) for node in _walk(body))


def _strategy(node: Any) -> str | None:
    return (node or {}).get("strategy") if isinstance(node, dict) else None


_NEW_STRATEGIES = ("none", "recursive")


def _drop_query(name: str) -> Callable[[Request], Request]:
    def adapt(request: Request) -> Request:
        return replace(request, query={k: v for k, v in request.query.items() if k != name})
    return adapt


def _reranker_has(key: str) -> Callable[[Any], bool]:
    return lambda body: any(key in (node.get("text_similarity_reranker") or {}) for node in _walk(body)
                            if isinstance(node.get("text_similarity_reranker"), dict))


FACTS: tuple[Fact, ...] = (
    Fact("inference_update", "updating an inference endpoint in place (PUT _inference/<task>/<id>/_update)",
         {8: (8, 17, 0), 9: (9, 0, 0)},
         "spec 8.17 inference/update/UpdateInferenceRequest.ts: @availability stack since=8.17.0",
         uses=_request("PUT", "/_inference/*/*/_update")),
    Fact("inference_put_timeout", "the `timeout` parameter of PUT _inference", {8: (8, 18, 0), 9: (9, 0, 0)},
         "spec 8.18 inference/put/PutRequest.ts adds `timeout?: Duration` (absent from 8.17)",
         uses=_request("PUT", "/_inference/*/*", query="timeout"), adapt=_drop_query("timeout")),
    Fact("inference_chunking_settings", "an inference endpoint's `chunking_settings`", {8: (8, 16, 0), 9: (9, 0, 0)},
         "spec 8.16 inference/_types/Services.ts: InferenceEndpoint.chunking_settings (absent from 8.15)",
         uses=_request("PUT", "/_inference/*/*", body=lambda b: "chunking_settings" in (b or {}))),
    Fact("chunking_strategy_none_recursive", "the `none` and `recursive` chunking strategies", {9: (9, 1, 0)},
         "elasticsearch-specification 220fd4062 \"[9.1] Adds new 'none' and 'recursive' chunking strategies to "
         "Inference APIs (#4841)\"; the 8.19 spec's InferenceChunkingSettings has sentence and word only",
         uses=lambda r: (_request("PUT", "/_inference/*/*")(r)
                         and _strategy((r.body or {}).get("chunking_settings")) in _NEW_STRATEGIES)
         or (r.method == "PUT" and _semantic_text(
             lambda n: _strategy(n.get("chunking_settings")) in _NEW_STRATEGIES)(r.body))),
    Fact("semantic_text_default_inference_id", "a `semantic_text` field without `inference_id`",
         {8: (8, 17, 0), 9: (9, 0, 0)},
         "spec 8.17 _types/mapping/core.ts: SemanticTextProperty.inference_id optional (required in 8.15/8.16)",
         uses=lambda r: r.method == "PUT" and _semantic_text(lambda n: "inference_id" not in n)(r.body)),
    Fact("semantic_text_options", "`index_options` or `chunking_settings` on a `semantic_text` field",
         {8: (8, 19, 0), 9: (9, 1, 0)},
         "spec 8.19 and 9.1 _types/mapping/core.ts: SemanticTextProperty.index_options/chunking_settings "
         "(absent from 8.18 and 9.0)",
         uses=lambda r: r.method == "PUT" and _semantic_text(
             lambda n: "index_options" in n or "chunking_settings" in n)(r.body)),
    Fact("rerank_long_documents", "`long_document_strategy`/`max_chunks_per_doc` of an elasticsearch rerank endpoint",
         {9: (9, 2, 0)},
         "elasticsearch-specification 545412e1c \"Adds new parameters to the elasticsearch inference API for the "
         "rerank task type (#5476)\" on 9.2 (absent from 8.19 and 9.1)",
         uses=_request("PUT", "/_inference/*/*", body=lambda b: any(
             k in ((b or {}).get("service_settings") or {}) for k in ("long_document_strategy",
                                                                      "max_chunks_per_doc")))),
    Fact("reranker_chunk_rescorer", "`chunk_rescorer` in text_similarity_reranker", {9: (9, 2, 0)},
         "ES TextSimilarityRankRetrieverBuilder parses chunk_rescorer from 9.2 (cluster feature "
         "text_similarity_reranker_snippets; conformance/skips.yaml)",
         in_search=_reranker_has("chunk_rescorer")),
)


def facts_for(version: Version) -> list[Fact]:
    """The facts the cluster's version does not have."""
    return [fact for fact in FACTS if not fact.available(version)]


def check_plan(plan: Any, version_text: str | None) -> tuple[list[str], list[str]]:
    """(refusals, notes) for a plan on a cluster of this version; adapts requests in place where a fact says how.
    An unknown version (serverless, or not readable) is not judged."""
    version = parse(version_text)
    if version is None:
        return [], []
    if version < MINIMUM:
        return [f"the cluster runs Elasticsearch {version_text}; es-stack needs {show(MINIMUM)} or later "
                f"({MINIMUM_SOURCE})"], []
    missing = facts_for(version)
    if not missing:
        return [], []
    refusals: list[str] = []
    notes: list[str] = []
    for change in plan.changes:
        if change.action in ("noop", "delete"):
            continue
        where = f"{change.key}" + (f" ({change.resource.source})" if getattr(change, "resource", None) else "")
        for index, op in enumerate(change.operations):
            if not isinstance(op, Request):
                continue
            for fact in missing:
                if not fact.uses(op):
                    continue
                if fact.adapt is not None:
                    change.operations[index] = op = fact.adapt(op)
                    note = f"{fact.what} is left out: the cluster runs {version_text} ({fact.what} needs " \
                           f"{fact.needs()})"
                    if note not in notes:
                        notes.append(note)
                    continue
                refusals.append(f"{where}: {fact.what} needs {fact.needs()}; the cluster runs {version_text} "
                                f"(source: {fact.source})")
    for check in getattr(plan, "checks", []):
        for fact in missing:
            if fact.in_search(check.spec):
                refusals.append(f"{check.key} ({check.source}): {fact.what} needs {fact.needs()}; the cluster runs "
                                f"{version_text} (source: {fact.source})")
    return sorted(set(refusals)), notes


def eland_es_version(version: Version) -> Version:
    """What eland's TransformerModel gets as `es_version` (provisioning/model_import/tracing.py): the cluster's own
    version. eland 9.2 uses it for two things only (eland/ml/pytorch/transformers.py _create_config):
    `embedding_size` in text_embedding configs from 8.8, prefix strings from 8.12; both hold on every supported
    version, so a model traced for 8.15+ uploads the same config to 8.x and 9.x. eland's CLI refuses 8.x
    (eland_import_hub_model.py check_cluster_version: "Eland 9.x does not support Elasticsearch 8.x"); this tool
    does not use the CLI, and uploads through the trained-model APIs that 8.15+ have (PUT _ml/trained_models,
    definition parts, vocabulary: the 8.x tutorial's own eland 8 uses the same ones)."""
    if version < MINIMUM:
        raise ValueError(f"Elasticsearch {show(version)} is older than {show(MINIMUM)}")
    return version
