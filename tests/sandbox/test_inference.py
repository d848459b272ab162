"""Inference endpoints of the sandbox (create, get, update, delete, rerank), through the real client."""

from __future__ import annotations

import base64

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, Elasticsearch, NotFoundError

from sandbox.errors import EsError
from sandbox.server import Sandbox
from testbed.tiny_model import local_scores, traced_tiny_cross_encoder

MODEL = "tiny-cross-encoder"
ENDPOINT = "my-rerank"
QUERY = "flesh-eating bad guy"
DOCS = ["a cannibal killer eats his victims", "a love story in paris", "gangsters fight a war in the city"]
PRECONFIGURED = [".elser-2-elasticsearch", ".multilingual-e5-small-elasticsearch", ".rerank-v1-elasticsearch"]
ES_SETTINGS = {"model_id": MODEL, "num_allocations": 1, "num_threads": 1}


@pytest.fixture(scope="module")
def traced():
    return traced_tiny_cross_encoder()


def upload(es, traced, model_id=MODEL):
    es.ml.put_trained_model(model_id=model_id, **traced.config)
    data = traced.definition()
    es.ml.put_trained_model_definition_part(model_id=model_id, part=0, definition=base64.b64encode(data).decode(),
                                            total_definition_length=len(data), total_parts=1)
    es.ml.put_trained_model_vocabulary(model_id=model_id, vocabulary=traced.vocabulary["vocabulary"])


@pytest.fixture
def model(es, traced):
    upload(es, traced)
    return traced


def create(es, inference_id=ENDPOINT, **settings):
    return es.inference.put(task_type="rerank", inference_id=inference_id, inference_config={
        "service": "elasticsearch", "service_settings": {**ES_SETTINGS, **settings}}).body


def reason(exc) -> str:
    return exc.value.body["error"]["reason"]


def deployment_ids(es) -> list[str]:
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"]
    return [s["deployment_stats"]["deployment_id"] for s in stats if "deployment_stats" in s]


def test_create_deploys_a_deployment_named_after_the_endpoint(es, model):
    created = create(es)
    assert created == {"inference_id": ENDPOINT, "task_type": "rerank", "service": "elasticsearch",
                       "service_settings": {"num_allocations": 1, "num_threads": 1, "model_id": MODEL},
                       "task_settings": {"return_documents": True}}
    assert deployment_ids(es) == [ENDPOINT]
    assert es.inference.get(inference_id=ENDPOINT).body == {"endpoints": [created]}
    listed = [e["inference_id"] for e in es.inference.get().body["endpoints"]]
    assert listed == sorted(PRECONFIGURED + [ENDPOINT])
    by_type = [e["inference_id"] for e in es.inference.get(task_type="rerank").body["endpoints"]]
    assert by_type == [".rerank-v1-elasticsearch", ENDPOINT]


def test_rerank_returns_the_models_scores_sorted(es, model):
    create(es)
    ranked = es.inference.rerank(inference_id=ENDPOINT, query=QUERY, input=DOCS).body["rerank"]
    expected = local_scores(model, QUERY, DOCS)
    assert [r["index"] for r in ranked] == sorted(range(len(DOCS)), key=lambda i: expected[i], reverse=True)
    for item in ranked:
        assert item["relevance_score"] == pytest.approx(expected[item["index"]], abs=1e-5)
        assert item["text"] == DOCS[item["index"]]
    # top_n and return_documents in the body (9.x request fields the 9.5 client has no keywords for)
    # a versioned Content-Type needs a versioned Accept in ES (RestCompatibleVersionHelper): send plain JSON for both
    top = es.perform_request("POST", f"/_inference/rerank/{ENDPOINT}",
                             headers={"accept": "application/json", "content-type": "application/json"},
                             body={"query": QUERY, "input": DOCS, "top_n": 1, "return_documents": False}
                             ).body["rerank"]
    assert top == [{"index": ranked[0]["index"], "relevance_score": ranked[0]["relevance_score"]}]


def test_store_rerank_gives_raw_scores_in_input_order(es, sandbox, model):
    create(es)
    with sandbox.cluster.lock:
        scores = sandbox.cluster.inference.rerank(ENDPOINT, QUERY, DOCS)
    assert scores == pytest.approx(local_scores(model, QUERY, DOCS), abs=1e-5)
    with pytest.raises(EsError) as missing:
        sandbox.cluster.inference.rerank("nope", QUERY, DOCS)
    assert (missing.value.status, missing.value.reason) == (404, "Inference endpoint not found [nope]")
    with pytest.raises(EsError) as wrong_type:
        sandbox.cluster.inference.rerank(".elser-2-elasticsearch", QUERY, DOCS)
    assert wrong_type.value.status == 400


def test_create_errors(es, model):
    with pytest.raises(BadRequestError) as same_as_model:
        create(es, inference_id=MODEL)
    assert "Inference endpoint IDs must be unique" in reason(same_as_model)
    with pytest.raises(NotFoundError) as no_model:
        es.inference.put(task_type="rerank", inference_id="x", inference_config={
            "service": "elasticsearch", "service_settings": {**ES_SETTINGS, "model_id": "absent"}})
    assert reason(no_model) == "Could not deploy model [absent] as the model cannot be found."
    with pytest.raises(BadRequestError) as reserved:
        create(es, inference_id=".rerank-v1-elasticsearch")
    assert "is a reserved inference ID" in reason(reserved)
    with pytest.raises(BadRequestError) as threads:
        create(es, num_threads=3)
    assert "num_threads" in reason(threads)
    with pytest.raises(BadRequestError) as bad_type:
        es.inference.put(inference_id="x", inference_config={"task_type": "bad", "service": "elasticsearch",
                                                             "service_settings": ES_SETTINGS})
    assert reason(bad_type) == "Unknown task_type [bad]"
    create(es)
    with pytest.raises(BadRequestError) as again:
        create(es)
    assert again.value.body["error"]["type"] == "status_exception"  # the running deployment's id is taken
    with pytest.raises(NotFoundError) as missing:
        es.inference.get(inference_id="nope")
    assert reason(missing) == "Inference endpoint not found [nope]"


def test_attach_to_an_existing_deployment(es, model):
    es.ml.start_trained_model_deployment(model_id=MODEL, deployment_id="shared")
    created = es.inference.put(task_type="rerank", inference_id="attached", inference_config={
        "service": "elasticsearch", "service_settings": {"deployment_id": "shared"}}).body
    assert created["service_settings"] == {"num_allocations": 1, "num_threads": 1, "model_id": MODEL,
                                           "deployment_id": "shared"}
    with pytest.raises(ConflictError) as stop:
        es.ml.stop_trained_model_deployment(model_id="shared")
    assert "Cannot stop deployment [shared] as it is used by inference endpoint [attached]" in reason(stop)
    es.inference.delete(inference_id="attached")
    assert deployment_ids(es) == ["shared"]  # an attached deployment outlives the endpoint


def test_delete_stops_the_created_deployment_and_honours_references(es, model):
    create(es)
    es.ingest.put_pipeline(id="uses-it", processors=[{"inference": {"model_id": ENDPOINT}}])
    with pytest.raises(ConflictError) as referenced:
        es.inference.delete(inference_id=ENDPOINT)
    assert "is referenced by pipelines: [uses-it]" in reason(referenced)
    dry = es.inference.delete(inference_id=ENDPOINT, dry_run=True).body
    assert dry["acknowledged"] is False and dry["pipelines"] == ["uses-it"]
    assert es.inference.delete(inference_id=ENDPOINT, force=True).body == {
        "acknowledged": True, "pipelines": ["uses-it"], "indexes": []}
    assert deployment_ids(es) == []
    assert es.ml.get_trained_models(model_id=MODEL).body["count"] == 1  # the model itself is never deleted
    with pytest.raises(NotFoundError):
        es.inference.delete(inference_id=ENDPOINT)


def test_update_allows_allocations_only(es, model):
    create(es)
    updated = es.inference.update(inference_id=ENDPOINT, inference_config={
        "service_settings": {"num_allocations": 2}}).body
    assert updated["service_settings"]["num_allocations"] == 2
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]["deployment_stats"]
    assert stats["number_of_allocations"] == 2
    for immutable in ({"model_id": "other"}, {"num_threads": 2}):
        with pytest.raises(BadRequestError):
            es.inference.update(inference_id=ENDPOINT, inference_config={"service_settings": immutable})
    assert es.inference.get(inference_id=ENDPOINT).body["endpoints"][0]["service_settings"]["model_id"] == MODEL


def test_ml_update_of_an_endpoint_deployment_is_refused_from_9_2(traced):
    for version, allowed in (("9.1.0", True), ("9.2.0", False)):
        server = Sandbox(version=version).start()
        try:
            client = Elasticsearch(server.url)
            upload(client, traced)
            create(client)
            if allowed:
                client.ml.update_trained_model_deployment(model_id=ENDPOINT, number_of_allocations=2)
                settings = client.inference.get(inference_id=ENDPOINT).body["endpoints"][0]["service_settings"]
                assert settings["num_allocations"] == 2
            else:
                with pytest.raises(ConflictError) as exc:
                    client.ml.update_trained_model_deployment(model_id=ENDPOINT, number_of_allocations=2)
                assert "must be updated through the inference API" in reason(exc)
        finally:
            server.stop()


def test_third_party_secrets_are_never_returned(es):
    created = es.inference.put(task_type="rerank", inference_id="cohere-rerank", inference_config={
        "service": "cohere", "service_settings": {"api_key": "s3cr3t-value", "model_id": "rerank-english-v3.0"}}).body
    assert created["service_settings"] == {"model_id": "rerank-english-v3.0"}
    assert "s3cr3t-value" not in str(es.inference.get().body)
    with pytest.raises(ApiError) as call:
        es.inference.rerank(inference_id="cohere-rerank", query="q", input=["a"])
    assert call.value.status_code == 500 and "s3cr3t-value" not in str(call.value.body)


def test_preconfigured_endpoint_cannot_download_its_model(es):
    with pytest.raises(BadRequestError) as exc:
        es.inference.rerank(inference_id=".rerank-v1-elasticsearch", query="q", input=["a"])
    assert "Model download task is currently running" in reason(exc)


def test_es_test_reranking_service_scores_numeric_texts(es):
    created = es.inference.put(task_type="rerank", inference_id="mock", inference_config={
        "service": "test_reranking_service", "service_settings": {"model_id": "m", "api_key": "k"}}).body
    assert created["service_settings"] == {"model_id": "m"}
    ranked = es.inference.rerank(inference_id="mock", query="q", input=["0", "10", "-1"]).body["rerank"]
    assert [(r["index"], r["relevance_score"]) for r in ranked] == [(1, 10.0), (0, 0.0), (2, -1.0)]


def test_update_switches_between_fixed_and_adaptive_allocations(es, model):
    create(es)
    adaptive = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 3}
    settings = es.inference.update(inference_id=ENDPOINT, inference_config={
        "service_settings": {"adaptive_allocations": adaptive}}).body["service_settings"]
    assert settings["adaptive_allocations"] == adaptive and "num_allocations" not in settings
    settings = es.inference.update(inference_id=ENDPOINT, inference_config={
        "service_settings": {"num_allocations": 2}}).body["service_settings"]
    assert settings["num_allocations"] == 2 and "adaptive_allocations" not in settings
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]["deployment_stats"]
    assert stats["number_of_allocations"] == 2 and stats["adaptive_allocations"]["enabled"] is False


def test_delete_refused_while_a_semantic_text_mapping_uses_the_endpoint(es):
    es.inference.put(task_type="sparse_embedding", inference_id="sparse", inference_config={
        "service": "test_service", "service_settings": {"model": "m", "api_key": "k"}})
    es.indices.create(index="docs", mappings={"properties": {"body": {"type": "semantic_text",
                                                                      "inference_id": "sparse"}}})
    with pytest.raises(ConflictError) as exc:
        es.inference.delete(inference_id="sparse")
    assert "is being used in the mapping for indexes: [docs]" in reason(exc)
    assert es.inference.delete(inference_id="sparse", force=True).body["indexes"] == ["docs"]


def test_built_in_model_cannot_be_downloaded_without_network(es):
    with pytest.raises(BadRequestError) as exc:
        es.inference.put(task_type="rerank", inference_id="elastic-rerank", inference_config={
            "service": "elasticsearch", "service_settings": {"model_id": ".rerank-v1", "num_threads": 1,
                                                             "num_allocations": 1}})
    assert "Model download task is currently running. Wait for trained model [.rerank-v1]" in reason(exc)
    with pytest.raises(NotFoundError):
        es.inference.get(inference_id="elastic-rerank")
