"""The sandbox's _rank_eval: Elasticsearch's own rank_eval YAML tests, and what the evaluation relies on
(retriever requests, ratings on the concrete index behind an alias, per-request failures, refusals)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from elasticsearch import BadRequestError

from conformance import runner as conformance

RANK_EVAL_YAML = (Path(__file__).parents[3] / "shared" / "es-yaml-tests-next" / "modules" / "rank-eval")


def test_elasticsearch_rank_eval_yaml_tests_pass():
    if not RANK_EVAL_YAML.is_dir():
        message = f"{RANK_EVAL_YAML} is absent (Elasticsearch's YAML tests live in ../shared beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(message + " - CI must provide it")
        pytest.skip(message)
    out = io.StringIO()
    summary = conformance.run(RANK_EVAL_YAML, out=out)
    assert summary.count("passed") == 4 and not summary.count("failed"), out.getvalue()


@pytest.fixture
def docs(es):
    es.indices.create(index="docs-1", mappings={"properties": {"text": {"type": "text"}}},
                      aliases={"docs": {}})
    for i, text in enumerate(["red apple", "green apple", "red car"], 1):
        es.index(index="docs", id=f"d{i}", document={"text": text})
    es.indices.refresh(index="docs")
    return es


def test_retriever_requests_and_concrete_index_ratings(docs):
    answer = docs.rank_eval(index="docs", metric={"dcg": {"normalize": True, "k": 5}}, requests=[
        {"id": "q", "request": {"retriever": {"standard": {"query": {"match": {"text": "red apple"}}}}},
         "ratings": [{"_index": "docs-1", "_id": "d1", "rating": 3}, {"_index": "docs-1", "_id": "d3", "rating": 1},
                     {"_index": "docs", "_id": "d2", "rating": 2}]}]).body  # the alias never matches a hit
    detail = answer["details"]["q"]
    assert detail["hits"][0] == {"hit": {"_index": "docs-1", "_id": "d1", "_score": detail["hits"][0]["hit"]["_score"]},
                                 "rating": 3}
    assert {"_index": "docs-1", "_id": "d2"} in detail["unrated_docs"]
    assert detail["metric_details"]["dcg"]["unrated_docs"] == 1
    assert answer["metric_score"] == detail["metric_score"] and answer["failures"] == {}


def test_a_failing_request_is_reported_under_its_id_and_duplicates_are_refused(docs):
    answer = docs.rank_eval(index="docs", metric={"precision": {"k": 2}}, requests=[
        {"id": "ok", "request": {"query": {"match": {"text": "apple"}}}, "ratings": [
            {"_index": "docs-1", "_id": "d1", "rating": 1}]},
        {"id": "bad", "request": {"query": {"no_such_query": {}}}, "ratings": []}]).body
    assert set(answer["details"]) == {"ok"} and set(answer["failures"]) == {"bad"}
    assert answer["details"]["ok"]["metric_details"]["precision"] == {"relevant_docs_retrieved": 1,
                                                                      "docs_retrieved": 2}
    with pytest.raises(BadRequestError, match="Found duplicate rated document key"):
        docs.rank_eval(index="docs", metric={"recall": {}}, requests=[
            {"id": "q", "request": {"query": {"match_all": {}}},
             "ratings": [{"_index": "docs-1", "_id": "d1", "rating": 1}] * 2}])
    with pytest.raises(BadRequestError, match="should not contain aggregations"):
        docs.rank_eval(index="docs", metric={"recall": {}}, requests=[
            {"id": "q", "request": {"query": {"match_all": {}}, "aggs": {"a": {"terms": {"field": "x"}}}},
             "ratings": []}])
