"""The sandbox as Elasticsearch 8.19 (sandbox/versions.py DIFFERENCES), through the engine's negotiating client."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError

from provisioning.connection import connect
from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def server():
    server = Sandbox(version="8.19.0").start()
    yield server
    server.stop()


@pytest.fixture
def es(server):
    server.reset()
    return connect(url=server.url)


def test_root_info_is_an_8_19_node(es):
    version = es.info()["version"]
    assert version["number"] == "8.19.0" and version["lucene_version"].startswith("9.")
    assert version["minimum_wire_compatibility_version"] == "7.17.0"


def test_compatible_with_7_is_accepted_and_9_refused(server):
    import json
    import urllib.error
    import urllib.request

    def get(accept):
        request = urllib.request.Request(server.url + "/", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    assert get("application/vnd.elasticsearch+json; compatible-with=7")[0] == 200
    status, body = get("application/vnd.elasticsearch+json; compatible-with=9")
    assert status == 400 and body["error"]["type"] == "media_type_header_exception"
    assert body["error"]["caused_by"]["reason"].startswith("Accept version must be either version 8 or 7, but found 9")


def test_get_index_with_features_keeps_empty_mappings(es):
    es.indices.create(index="films", mappings={"properties": {"title": {"type": "text"}}})
    got = es.indices.get(index="films", features=["aliases", "settings"])["films"]
    assert got["mappings"] == {}


def test_is_write_index_as_a_string_is_accepted_at_creation(es):
    es.indices.create(index="logs-1", aliases={"logs": {"is_write_index": "true"}})
    assert es.indices.get_alias(name="logs")["logs-1"]["aliases"]["logs"]["is_write_index"] is True
    features = es.cluster.state(filter_path="nodes_features")["nodes_features"][0]["features"]
    assert "text_similarity_reranker_retriever_supported" in features
    assert "index.throw_exception_on_index_creation_if_unsupported_value_type_in_alias" not in features


def test_9_x_inference_options_are_refused(es):
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(task_type="text_embedding", inference_id="e", inference_config={
            "service": "openai", "service_settings": {"model_id": "m", "api_key": "k"},
            "chunking_settings": {"strategy": "recursive", "max_chunk_size": 200, "separator_group": "plaintext"}})
    assert "Invalid chunkingStrategy recursive" in str(caught.value.body)
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(task_type="rerank", inference_id="r", inference_config={
            "service": "elasticsearch", "service_settings": {"model_id": "m", "num_allocations": 1, "num_threads": 1,
                                                             "long_document_strategy": "chunk"}})
    assert "unknown to the [elasticsearch] service" in str(caught.value.body)
