"""Leniencies the sandbox no longer has (issue 11 item 6): each refused with Elasticsearch's error type and message."""

from __future__ import annotations

import pytest
from elasticsearch import ApiError, Elasticsearch

from sandbox.server import Sandbox
from testbed.tiny_model import traced_tiny_cross_encoder
from tests.sandbox.test_inference import ES_SETTINGS, MODEL, upload


def error(call, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


def kind_and_reason(exc: ApiError) -> tuple[int, str, str]:
    return exc.meta.status, exc.body["error"]["type"], exc.body["error"]["reason"]


PARSE = "Failed to parse mapping: "  # index creation wraps mapping errors (MetadataCreateIndexService)


# ---- mappings -------------------------------------------------------------------------------------------------
def test_a_field_without_type_or_properties_is_refused(es):
    exc = error(es.indices.create, index="m", mappings={"properties": {"title": {}}})
    assert kind_and_reason(exc) == (400, "mapper_parsing_exception", PARSE + "No type specified for field [title]")
    exc = error(es.indices.create, index="m", mappings={"properties": {"title": {"analyzer": "standard"}}})
    assert kind_and_reason(exc)[2] == PARSE + "No type specified for field [title]"
    # ObjectMapper.TypeParser: `properties`, or a lone `enabled`, make an object
    es.indices.create(index="m", mappings={"properties": {"a": {"enabled": False}, "b": {"properties": {}}}})
    assert es.indices.get_mapping(index="m")["m"]["mappings"]["properties"]["a"] == {"type": "object",
                                                                                     "enabled": False}


def test_unknown_mapping_parameters_are_refused(es):
    exc = error(es.indices.create, index="m", mappings={"properties": {"title": {"type": "text", "foo": 1}}})
    assert kind_and_reason(exc) == (400, "mapper_parsing_exception",
                                    PARSE + "unknown parameter [foo] on mapper [title] of type [text]")
    exc = error(es.indices.create, index="m",
                mappings={"properties": {"meta": {"type": "object", "foo": "bar", "properties": {}}}})
    assert kind_and_reason(exc) == (400, "mapper_parsing_exception",
                                    PARSE + "Mapping definition for [meta] has unsupported parameters:  [foo : bar]")


def test_copy_to_an_undeclared_field_follows_the_dynamic_setting_at_index_time(es):
    es.indices.create(index="strict", mappings={"dynamic": "strict", "properties": {
        "title": {"type": "text", "copy_to": "all_text"}}})  # accepted: ES checks copy_to targets at index time
    exc = error(es.index, index="strict", id="1", document={"title": "x"})
    status, kind, reason = kind_and_reason(exc)
    assert (status, kind) == (400, "strict_dynamic_mapping_exception")
    assert reason.endswith("mapping set to strict, dynamic introduction of [all_text] within [_doc] is not allowed")
    es.indices.create(index="lenient", mappings={"properties": {"title": {"type": "text", "copy_to": "all_text"}}})
    es.index(index="lenient", id="1", document={"title": "x"})
    assert es.indices.get_mapping(index="lenient")["lenient"]["mappings"]["properties"]["all_text"]["type"] == "text"


# ---- inference ------------------------------------------------------------------------------------------------
@pytest.fixture
def model(es):
    upload(es, traced_tiny_cross_encoder())
    return MODEL


@pytest.mark.usefixtures("model")
def test_unknown_task_settings_of_a_custom_model_are_refused(es):
    exc = error(es.inference.put, task_type="rerank", inference_id="r", inference_config={
        "service": "elasticsearch", "service_settings": ES_SETTINGS, "task_settings": {"top_k": 3}})
    assert kind_and_reason(exc) == (400, "status_exception",
                                    "Configuration contains settings [{top_k=3}] unknown to the [elasticsearch] "
                                    "service")
    created = es.inference.put(task_type="rerank", inference_id="r", inference_config={
        "service": "elasticsearch", "service_settings": ES_SETTINGS, "task_settings": {"return_documents": False}})
    assert created["task_settings"] == {"return_documents": False}


def test_elser_without_model_id_takes_the_default_model_and_elasticsearch_refuses(es):
    # ElasticsearchInternalService: the elser service defaults model_id (the cluster's ELSER v2 variant); the
    # sandbox cannot download it, so the start fails naming the defaulted model instead of a missing model_id
    exc = error(es.inference.put, task_type="sparse_embedding", inference_id="e", inference_config={
        "service": "elser", "service_settings": {"num_allocations": 1, "num_threads": 1}})
    assert ".elser_model_2_linux-x86_64" in kind_and_reason(exc)[2]
    assert "without a model_id field is deprecated" in exc.meta.headers["warning"]
    exc = error(es.inference.put, task_type="sparse_embedding", inference_id="e", inference_config={
        "service": "elasticsearch", "service_settings": {"num_allocations": 1, "num_threads": 1}})
    assert kind_and_reason(exc) == (400, "illegal_argument_exception",
                                    "Error parsing service settings, model_id must be provided")


# ---- search ---------------------------------------------------------------------------------------------------
RERANK = {"text_similarity_reranker": {"retriever": {"standard": {"query": {"match_all": {}}}}, "field": "t",
                                       "inference_text": "q", "inference_id": "x",
                                       "chunk_rescorer": {"size": 0}}}


def test_chunk_rescorer_exists_only_from_9_2(es):
    es.indices.create(index="docs")
    exc = error(es.search, index="docs", retriever=RERANK)
    assert kind_and_reason(exc) == (400, "x_content_parse_exception",
                                    "[text_similarity_reranker] unknown field [chunk_rescorer]")
    newer = Sandbox(version="9.2.0").start()
    try:
        client = Elasticsearch(newer.url)
        client.indices.create(index="docs")
        exc = error(client.search, index="docs", retriever=RERANK)  # parsed: its own validation answers
        assert kind_and_reason(exc) == (400, "illegal_argument_exception", "size must be greater than 0, was: 0")
    finally:
        newer.stop()


# ---- aliases --------------------------------------------------------------------------------------------------
def test_alias_action_results_list_the_resolved_sorted_indices(es):
    for name in ("logs-b", "logs-a"):
        es.indices.create(index=name)
    result = es.indices.update_aliases(actions=[{"add": {"index": "logs-*", "alias": "logs"}},
                                                {"remove": {"index": "logs-b", "alias": "missing"}},
                                                {"remove_index": {"index": "logs-b"}}])
    assert result["errors"] is True
    assert [r["action"] for r in result["action_results"]] == [
        {"type": "add", "indices": ["logs-a", "logs-b"], "aliases": ["logs"]},
        {"type": "remove", "indices": ["logs-b"], "aliases": ["missing"]},
        {"type": "remove_index", "indices": ["logs-b"], "aliases": []},
    ]
