"""Retrievers: `standard` and `text_similarity_reranker` (ES docs: text_similarity_reranker retriever).

A retriever produces the full ranked candidate list; the search request then applies total/from/size.
The rerank call goes through the inference area: `sb.cluster.inference.rerank(inference_id, query, texts)`
returns raw scores in input order and raises ES's errors (404 missing endpoint, 400 wrong task type).
"""

from __future__ import annotations

import math
from typing import Any

from sandbox.errors import ActionRequestValidation, EsError
from sandbox.search.execute import Hit, apply_sort, f32, parse_sort, search_hits
from sandbox.search.fields import values_at
from sandbox.versions import version_at_least

DEFAULT_RERANK_ID = ".rerank-v1-elasticsearch"  # 9.x default inference_id (ES docs: text_similarity_reranker retriever)
DEFAULT_RANK_WINDOW = 10
_STANDARD_KEYS = {"query", "filter", "min_score", "sort", "_name", "terminate_after", "search_after", "collapse",
                  "rescore"}
_RERANK_KEYS = {"retriever", "field", "inference_text", "inference_id", "rank_window_size", "min_score", "filter",
                "allow_rerank_failures", "chunk_rescorer", "_name"}


def _parse_error(name: str, reason: str) -> EsError:
    return EsError(f"[{name}] {reason}", status=400, type="x_content_parse_exception")


def _filters(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return [spec] if isinstance(spec, dict) else list(spec)


def _one(spec: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise EsError("retriever malformed, expected exactly one retriever", status=400, type="parsing_exception")
    name, body = next(iter(spec.items()))
    if not isinstance(body, dict):
        raise _parse_error(name, "expected an object")
    return name, body


def validate(spec: Any, size: int | None, version: str = "9.1.0") -> None:
    """Request-level checks done before any search (ES: SearchRequest#validate / retriever builders)."""
    name, body = _one(spec)
    if name == "standard":
        unknown = set(body) - _STANDARD_KEYS
        if unknown:
            raise _parse_error("standard", f"unknown field [{sorted(unknown)[0]}]")
        return
    if name == "text_similarity_reranker":
        unknown = set(body) - _RERANK_KEYS
        if "chunk_rescorer" in body and not version_at_least(version, (9, 2)):
            unknown.add("chunk_rescorer")  # TextSimilarityRankRetrieverBuilder parses it from 9.2 (snippets feature)
        if unknown:
            raise _parse_error(name, f"unknown field [{sorted(unknown)[0]}]")
        missing = [k for k in ("retriever", "field", "inference_text") if k not in body]
        if missing:
            raise _parse_error(name, f"Required [{', '.join(missing)}]")
        window = int(body.get("rank_window_size", DEFAULT_RANK_WINDOW))
        if size is not None and size > window:
            # ES CompoundRetrieverBuilder#validate [K: wording not verified against a live cluster]
            raise ActionRequestValidation(f"[{name}] requires [rank_window_size: {window}] be greater than or "
                                          f"equal to [size: {size}]")
        chunk = body.get("chunk_rescorer")
        if isinstance(chunk, dict) and "size" in chunk and int(chunk["size"]) <= 0:
            raise EsError(f"size must be greater than 0, was: {chunk['size']}", status=400,
                          type="illegal_argument_exception")  # ES TextSimilarityRankRetrieverBuilder
        validate(body["retriever"], None, version)
        return
    raise EsError(f"unknown retriever [{name}]", status=400, type="parsing_exception")


def run(sb: Any, indices: list[Any], spec: Any, extra_filters: list[Any] | None = None) -> tuple[list[Hit], bool]:
    """(ranked candidates, sorted_by_fields) for a retriever; extra_filters come from an enclosing retriever."""
    name, body = _one(spec)
    if name == "standard":
        filters = _filters(body.get("filter")) + list(extra_filters or [])
        min_score = body.get("min_score")
        hits = search_hits(indices, body.get("query"), filters, float(min_score) if min_score is not None else None)
        sort = parse_sort(body.get("sort"))
        if sort and not (len(sort) == 1 and sort[0][0] == "_score" and sort[0][1] == "desc"):
            apply_sort(hits, sort)
            return hits, True
        return hits, False
    return rerank(sb, indices, body, extra_filters)


def normalise(score: float) -> float:
    """9.x: rerank scores are made non-negative, max(s, 0) + min(exp(s), 1) (ES reranker retriever docs)."""
    return max(score, 0.0) + min(math.exp(score), 1.0) if score < 700 else score + 1.0


def _field_text(hit: Hit, field: str) -> str:
    """ES TextSimilarityRerankingRankFeaturePhaseRankShardContext: the field's first value, as a string.
    (A document without the field sends no feature text in ES; the sandbox sends an empty string.)"""
    values = [v for v in values_at(hit.doc.source, field) if not isinstance(v, dict)]
    if not values:
        return ""
    value = values[0]
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def rerank(sb: Any, indices: list[Any], body: dict[str, Any], extra_filters: list[Any] | None
           ) -> tuple[list[Hit], bool]:
    window = int(body.get("rank_window_size", DEFAULT_RANK_WINDOW))
    filters = _filters(body.get("filter")) + list(extra_filters or [])  # AND-ed onto the child retriever
    child, sorted_by_fields = run(sb, indices, body["retriever"], filters)
    top = child[:window]
    inference_id = body.get("inference_id", DEFAULT_RERANK_ID)
    texts = [_field_text(hit, body["field"]) for hit in top]
    try:
        # called even with no candidates: a missing endpoint is a 404 then too (ES fix in 8.15.1)
        raw = sb.cluster.inference.rerank(inference_id, str(body["inference_text"]), texts)
    except EsError:
        if body.get("allow_rerank_failures"):
            return top, sorted_by_fields  # keep the child's order (and its sort values)
        raise
    if len(raw) != len(top):
        raise EsError(f"Reranker input document count and returned score count mismatch: [{len(top)}] vs "
                      f"[{len(raw)}]", status=500, type="illegal_state_exception")
    # ES TextSimilarityRankFeaturePhaseRankCoordinatorContext#preprocess: min_score is compared with the RAW
    # rerank score, then the kept scores are normalised and sorted (the ES text_similarity_reranker docs imply
    # "normalised"; the ES source says raw, and the YAML tests cannot tell the two apart).
    min_score = body.get("min_score")
    kept = []
    for hit, score in zip(top, raw, strict=True):
        raw_score = f32(float(score))
        if min_score is not None and raw_score < f32(float(min_score)):
            continue
        hit.score = f32(normalise(raw_score))
        hit.sort = None
        kept.append(hit)
    return sorted(kept, key=lambda h: (-h.score, h.rank)), False
