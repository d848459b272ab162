"""Ad-hoc searches for `invoke search`: a lexical query, optionally reranked by the stack's rerank endpoint."""

from __future__ import annotations

from typing import Any

from provisioning.errors import ConfigError
from provisioning.kinds.inference_endpoint import rerank_endpoint
from provisioning.report import hits_total, render_hits

__all__ = ["format_hits", "rerank_endpoint", "search_body"]


def search_body(query: str, *, fields: list[str], rerank: str | None = None, inference_id: str | None = None,
                rerank_field: str = "plot", size: int = 10, rank_window_size: int = 50) -> dict[str, Any]:
    """A retriever body: `standard` multi_match over the fields, wrapped in a text_similarity_reranker when
    --rerank gives the text to rerank against (semantic-reranking-tutorial.md step 7)."""
    standard = {"standard": {"query": {"multi_match": {"query": query, "fields": fields}}}}
    if not rerank:
        return {"retriever": standard, "size": size}
    if not inference_id:
        raise ConfigError("no rerank endpoint: declare an inference_endpoint with task_type: rerank in the manifests "
                          "or pass --inference-id")
    return {"size": size, "retriever": {"text_similarity_reranker": {
        "retriever": standard, "field": rerank_field, "inference_id": inference_id, "inference_text": rerank,
        "rank_window_size": max(rank_window_size, size)}}}


def format_hits(response: dict[str, Any], fields: list[str], width: int = 100) -> str:
    hits = response.get("hits", {}).get("hits", [])
    return "\n".join([f"{hits_total(response)} hits", *render_hits(hits, fields, width=width)])
