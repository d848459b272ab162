"""`invoke search` bodies and output: lexical, or reranked by the stack's rerank endpoint."""

from __future__ import annotations

import pytest

from provisioning import ConfigError
from provisioning.adhoc import format_hits, rerank_endpoint, search_body
from provisioning.model import Resource, SourceLocation


def test_lexical_body():
    assert search_body("crime", fields=["title", "plot"]) == {
        "retriever": {"standard": {"query": {"multi_match": {"query": "crime", "fields": ["title", "plot"]}}}},
        "size": 10}


def test_reranked_body_wraps_the_lexical_retriever():
    body = search_body("crime", fields=["plot"], rerank="bad guy", inference_id="rr", size=5)
    reranker = body["retriever"]["text_similarity_reranker"]
    assert reranker["inference_id"] == "rr" and reranker["inference_text"] == "bad guy"
    assert reranker["field"] == "plot" and reranker["rank_window_size"] >= 5
    assert reranker["retriever"]["standard"]["query"]["multi_match"]["query"] == "crime"


def test_rerank_without_endpoint_says_what_to_do():
    with pytest.raises(ConfigError, match="--inference-id"):
        search_body("crime", fields=["plot"], rerank="x")


def test_endpoint_comes_from_the_manifests():
    resources = [Resource("inference_endpoint", "emb", {"task_type": "text_embedding"}, SourceLocation("a")),
                 Resource("inference_endpoint", "rr", {"task_type": "rerank"}, SourceLocation("a"))]
    assert rerank_endpoint(resources) == "rr"


def test_hits_print_rank_score_title_and_plot():
    text = format_hits({"hits": {"total": {"value": 7}, "hits": [
        {"_id": "1", "_score": 2.5, "_source": {"title": "Heat", "plot": "a heist"}}]}}, ["title", "plot"])
    assert text.splitlines() == ["7 hits", "  1.   2.5000  Heat", "              a heist"]
