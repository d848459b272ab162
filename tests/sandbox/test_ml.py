"""Trained models API of the sandbox (configs, definition parts, deployments, _infer), through the real client.

The model is the tiny cross-encoder traced by the real eland (tests/support/tiny_model.py), uploaded here with
plain client calls so each API step can be checked on its own.
"""

from __future__ import annotations

import base64
import json

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, NotFoundError

from sandbox.server import Sandbox
from testbed.tiny_model import local_scores, traced_tiny_cross_encoder

MODEL = "tiny-cross-encoder"
QUERY = "flesh-eating bad guy"
PLOTS = ["a young trainee must get help from an imprisoned cannibal killer to catch another serial killer",
         "a boy and his robot friend go on a journey through space"]


@pytest.fixture(scope="module")
def traced():
    return traced_tiny_cross_encoder()


def upload(es, traced, model_id=MODEL, *, chunk=64 * 1024, parts=None, vocabulary=True):
    """PUT config, definition parts (optionally only some of them) and vocabulary, as eland does."""
    es.ml.put_trained_model(model_id=model_id, **traced.config)
    data = traced.definition()
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    for number, piece in enumerate(chunks):
        if parts is None or number in parts:
            es.ml.put_trained_model_definition_part(
                model_id=model_id, part=number, definition=base64.b64encode(piece).decode(),
                total_definition_length=len(data), total_parts=len(chunks))
    if vocabulary:
        es.ml.put_trained_model_vocabulary(model_id=model_id, vocabulary=traced.vocabulary["vocabulary"])
    return len(chunks)


def error(exc: ApiError) -> dict:
    return exc.value.body["error"] if hasattr(exc, "value") else exc.body["error"]


def test_put_config_fills_in_es_defaults(es, traced):
    config = es.ml.put_trained_model(model_id=MODEL, **traced.config).body
    assert config["model_id"] == MODEL and config["model_type"] == "pytorch"
    for generated in ("create_time", "version", "license_level", "created_by", "estimated_operations"):
        assert generated in config
    similarity = config["inference_config"]["text_similarity"]
    assert similarity["vocabulary"] == {"index": ".ml-inference-native-000002"}
    assert similarity["tokenization"]["bert"] == {"do_lower_case": True, "with_special_tokens": True,
                                                  "max_sequence_length": 512, "truncate": "second", "span": -1}
    assert similarity["span_score_combination_function"] == "max"
    assert es.ml.get_trained_models(model_id=MODEL).body["trained_model_configs"][0] == config


def test_put_config_errors(es, traced):
    with pytest.raises(BadRequestError) as unknown:
        es.ml.put_trained_model(model_id="m", body={"model_type": "pytorch", "nonsense": 1,
                                                    "inference_config": {"pass_through": {}}})
    assert error(unknown)["type"] == "x_content_parse_exception"
    with pytest.raises(BadRequestError) as vocabulary:
        es.ml.put_trained_model(model_id="m", body={"model_type": "pytorch",
                                                    "inference_config": {"ner": {"vocabulary": {"index": "x"}}}})
    assert "illegal setting [vocabulary] on inference model creation" in error(vocabulary)["reason"]
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    with pytest.raises(BadRequestError) as duplicate:
        es.ml.put_trained_model(model_id=MODEL, **traced.config)
    assert error(duplicate)["type"] == "resource_already_exists_exception"


def test_get_lists_lang_ident_pages_and_filters(es, traced):
    for name in ("b-model", "a-model"):
        es.ml.put_trained_model(model_id=name, body={**traced.config, "tags": [name[0], "shared"]})
    listed = es.ml.get_trained_models().body
    assert listed["count"] == 3
    assert [c["model_id"] for c in listed["trained_model_configs"]] == ["a-model", "b-model", "lang_ident_model_1"]
    page = es.ml.get_trained_models(model_id="*", from_=1, size=1).body
    assert page["count"] == 3 and [c["model_id"] for c in page["trained_model_configs"]] == ["b-model"]
    tagged = es.ml.get_trained_models(model_id="*", tags="b,shared").body
    assert [c["model_id"] for c in tagged["trained_model_configs"]] == ["b-model"]
    assert es.ml.get_trained_models(model_id="zzz*").body == {"count": 0, "trained_model_configs": []}
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models(model_id="zzz*", allow_no_match=False)
    with pytest.raises(NotFoundError) as missing:
        es.ml.get_trained_models(model_id="missing")
    assert error(missing)["reason"] == "Could not find trained model [missing]"
    generated = es.ml.get_trained_models(model_id="a-model", exclude_generated=True).body["trained_model_configs"][0]
    assert "create_time" not in generated and "version" not in generated


def test_definition_parts_and_definition_status(es, traced):
    total = upload(es, traced, parts={0})
    assert total > 1, "the test needs a multi-part upload"

    def fully_defined():
        return es.ml.get_trained_models(model_id=MODEL, include="definition_status").body[
            "trained_model_configs"][0]["fully_defined"]

    assert fully_defined() is False
    with pytest.raises(BadRequestError) as bounds:
        es.ml.put_trained_model_definition_part(model_id=MODEL, part=total, definition="AAAA",
                                                total_definition_length=3, total_parts=total)
    assert "[part] must be less than total_parts" in error(bounds)["reason"]
    with pytest.raises(NotFoundError):
        es.ml.put_trained_model_definition_part(model_id="nobody", part=0, definition="AAAA",
                                                total_definition_length=3, total_parts=1)
    es.ml.delete_trained_model(model_id=MODEL)
    upload(es, traced)
    assert fully_defined() is True


def test_start_without_definition_is_404(es, traced):
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    with pytest.raises(NotFoundError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started")
    assert error(exc)["reason"] == f"Could not find trained model definition [{MODEL}]"


def test_start_with_truncated_definition_is_400(es, traced):
    upload(es, traced, parts={0})
    with pytest.raises(BadRequestError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started")
    assert error(exc)["reason"] == (f"Model definition truncated. Unable to deserialize trained model definition "
                                    f"[{MODEL}]")
    assert "deployment_stats" not in es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]


def test_corrupt_definition_fails_the_start_and_leaves_no_deployment(es, traced):
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    garbage = b"not a torchscript archive" * 10
    es.ml.put_trained_model_definition_part(model_id=MODEL, part=0, definition=base64.b64encode(garbage).decode(),
                                            total_definition_length=len(garbage), total_parts=1)
    es.ml.put_trained_model_vocabulary(model_id=MODEL, vocabulary=traced.vocabulary["vocabulary"])
    with pytest.raises(ApiError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started")
    assert exc.value.status_code == 500
    assert "Could not start trained model deployment, the following nodes failed with errors" in error(exc)["reason"]
    assert "deployment_stats" not in es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]


def test_deployment_runs_the_uploaded_model(es, traced):
    upload(es, traced)
    started = es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started").body["assignment"]
    assert started["assignment_state"] == "started"
    assert started["task_parameters"]["deployment_id"] == MODEL
    assert started["task_parameters"]["model_bytes"] == len(traced.definition())
    scores = [es.ml.infer_trained_model(model_id=MODEL, docs=[{"text_field": plot}],
                                        inference_config={"text_similarity": {"text": QUERY}}
                                        ).body["inference_results"][0]["predicted_value"] for plot in PLOTS]
    assert scores == pytest.approx(local_scores(traced, QUERY, PLOTS), abs=1e-5)
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body
    deployment = stats["trained_model_stats"][0]["deployment_stats"]
    assert deployment["state"] == "started"
    assert deployment["allocation_status"]["state"] == "fully_allocated"
    assert deployment["nodes"][0]["inference_count"] == len(PLOTS)
    with pytest.raises(BadRequestError) as twice:
        es.ml.start_trained_model_deployment(model_id=MODEL)
    assert "an existing deployment with the same id" in error(twice)["reason"]


def test_text_similarity_needs_the_query_text(es, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL)
    with pytest.raises(BadRequestError) as exc:
        es.ml.infer_trained_model(model_id=MODEL, docs=[{"text_field": "x"}])
    assert "including the desired [text]" in error(exc)["reason"]


def test_two_deployments_give_two_stats_entries_and_stop_rules(es, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL, deployment_id="for-search")
    es.ml.start_trained_model_deployment(model_id=MODEL, deployment_id="for-ingest")
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body
    assert stats["count"] == 1
    assert [s["deployment_stats"]["deployment_id"] for s in stats["trained_model_stats"]] == ["for-ingest",
                                                                                               "for-search"]
    assert es.ml.stop_trained_model_deployment(model_id="for-search").body == {"stopped": True}
    assert es.ml.stop_trained_model_deployment(model_id="for-search").body == {"stopped": True}
    with pytest.raises(NotFoundError) as exc:
        es.ml.stop_trained_model_deployment(model_id="for-search", allow_no_match=False)
    assert error(exc)["reason"] == "No known model deployment with id [for-search]"


def test_low_priority_allows_one_allocation_only(es, traced):
    upload(es, traced)
    with pytest.raises(BadRequestError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, priority="low", number_of_allocations=2)
    assert "[number_of_allocations] must be 1 when [priority] is low" in error(exc)["reason"]


def test_update_deployment_and_adaptive_allocations(es, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL)
    updated = es.ml.update_trained_model_deployment(model_id=MODEL, number_of_allocations=2).body
    assert updated["assignment"]["task_parameters"]["number_of_allocations"] == 2
    adaptive = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4}
    es.ml.update_trained_model_deployment(model_id=MODEL, adaptive_allocations=adaptive)
    stats = es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]["deployment_stats"]
    assert stats["adaptive_allocations"] == adaptive
    with pytest.raises(NotFoundError):
        es.ml.update_trained_model_deployment(model_id="nope", number_of_allocations=1)


def test_delete_rules(es, sandbox, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL)
    with pytest.raises(ConflictError) as deployed:
        es.ml.delete_trained_model(model_id=MODEL)
    assert "as it is currently deployed; use force to delete the model" in error(deployed)["reason"]
    assert es.ml.delete_trained_model(model_id=MODEL, force=True).body == {"acknowledged": True}
    assert es.ml.get_trained_models_stats().body["count"] == 1  # only lang_ident_model_1 is left
    with pytest.raises(NotFoundError):
        es.ml.delete_trained_model(model_id=MODEL, force=True)


def test_delete_refused_while_a_pipeline_uses_the_model(es, traced):
    upload(es, traced)
    es.ingest.put_pipeline(id="rerank-pipe", processors=[{"inference": {"model_id": MODEL}}])
    with pytest.raises(ConflictError) as exc:
        es.ml.delete_trained_model(model_id=MODEL)
    assert "still referenced by ingest processors" in error(exc)["reason"]
    assert es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0]["pipeline_count"] == 1


def test_state_survives_dump_and_load_with_a_lazy_restart(es, sandbox, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL)
    state = json.loads(json.dumps(sandbox.cluster.dump()))  # must be JSON-serialisable
    restored = Sandbox()
    restored.cluster.load(state)
    restored.start()
    try:
        from elasticsearch import Elasticsearch

        client = Elasticsearch(restored.url)
        result = client.ml.infer_trained_model(model_id=MODEL, docs=[{"text_field": PLOTS[0]}],
                                               inference_config={"text_similarity": {"text": QUERY}}).body
        assert result["inference_results"][0]["predicted_value"] == pytest.approx(
            local_scores(traced, QUERY, PLOTS[:1])[0], abs=1e-5)
    finally:
        restored.stop()


def test_stats_accept_a_deployment_id(es, traced):
    upload(es, traced)
    es.ml.start_trained_model_deployment(model_id=MODEL, deployment_id="one")
    es.ml.start_trained_model_deployment(model_id=MODEL, deployment_id="two")
    stats = es.ml.get_trained_models_stats(model_id="two").body
    assert stats["count"] == 1
    assert [s["deployment_stats"]["deployment_id"] for s in stats["trained_model_stats"]] == ["two"]


def test_long_texts_without_truncation_are_scored_in_windows(es, traced):
    """truncate=none with a span: ES scores overlapping windows of the text and keeps the max (default)."""
    config = json.loads(json.dumps(traced.config))
    config["inference_config"]["text_similarity"]["tokenization"]["bert"].update(
        {"max_sequence_length": 24, "truncate": "none", "span": 4})
    es.ml.put_trained_model(model_id="windowed", body=config)
    data = traced.definition()
    es.ml.put_trained_model_definition_part(model_id="windowed", part=0, definition=base64.b64encode(data).decode(),
                                            total_definition_length=len(data), total_parts=1)
    es.ml.put_trained_model_vocabulary(model_id="windowed", vocabulary=traced.vocabulary["vocabulary"])
    es.ml.start_trained_model_deployment(model_id="windowed")
    words = ["killer", "crime", "love", "city", "cannibal", "police", "escape", "prison", "family", "money", "war",
             "ship", "space", "robot", "night", "secret", "mission", "island", "shark", "doctor"] * 2  # one piece each
    query = "bad guy"  # 2 tokens: each window holds 24 - 2 - 3 special tokens = 19 words, 4 overlapping
    windows = [" ".join(words[0:19]), " ".join(words[15:34]), " ".join(words[30:40])]
    served = es.ml.infer_trained_model(model_id="windowed", docs=[{"text_field": " ".join(words)}],
                                       inference_config={"text_similarity": {"text": query}}
                                       ).body["inference_results"][0]["predicted_value"]
    assert served == pytest.approx(max(local_scores(traced, query, windows)), abs=1e-5)

    config["inference_config"]["text_similarity"]["tokenization"]["bert"].update({"span": -1})
    es.ml.put_trained_model(model_id="unwindowed", body=config)
    es.ml.put_trained_model_definition_part(model_id="unwindowed", part=0, definition=base64.b64encode(data).decode(),
                                            total_definition_length=len(data), total_parts=1)
    es.ml.put_trained_model_vocabulary(model_id="unwindowed", vocabulary=traced.vocabulary["vocabulary"])
    es.ml.start_trained_model_deployment(model_id="unwindowed")
    with pytest.raises(BadRequestError) as exc:
        es.ml.infer_trained_model(model_id="unwindowed", docs=[{"text_field": " ".join(words)}],
                                  inference_config={"text_similarity": {"text": query}})
    assert exc.value.body["error"]["reason"] == ("Input too large. The tokenized input length [45] exceeds the maximum "
                                                 "sequence length [24]")


def test_repeated_definition_part_and_vocabulary_already_exist(es, traced):
    # ES TrainedModelProvider: parts and the vocabulary are indexed with op_type=create -> 400 already exists
    upload(es, traced, parts={0}, vocabulary=False)
    data = traced.definition()
    with pytest.raises(BadRequestError) as part:
        es.ml.put_trained_model_definition_part(model_id=MODEL, part=0, definition=base64.b64encode(data[:10]).decode(),
                                                total_definition_length=len(data), total_parts=2)
    assert error(part)["type"] == "resource_already_exists_exception"
    assert error(part)["reason"] == f"Trained machine learning model chunked doc [{MODEL}][0] already exists"
    vocabulary = traced.vocabulary["vocabulary"]
    with pytest.raises(BadRequestError) as scores:
        es.ml.put_trained_model_vocabulary(model_id=MODEL, vocabulary=vocabulary, scores=[1.0])
    assert "[scores] must have same length as [vocabulary]" in error(scores)["reason"]
    es.ml.put_trained_model_vocabulary(model_id=MODEL, vocabulary=vocabulary)
    with pytest.raises(BadRequestError) as again:
        es.ml.put_trained_model_vocabulary(model_id=MODEL, vocabulary=vocabulary)
    assert error(again)["type"] == "resource_already_exists_exception"
    assert error(again)["reason"] == f"Trained machine learning model [{MODEL}] vocabulary already exists"


def test_ml_info_describes_the_ml_node(es, sandbox):
    info = es.ml.info().body
    assert info["upgrade_mode"] is False
    assert info["native_code"]["version"] == sandbox.cluster.version
    assert info["defaults"]["datafeeds"] == {"scroll_size": 1000}
    assert info["defaults"]["anomaly_detectors"]["model_memory_limit"] == "1gb"
    limits = info["limits"]
    assert limits["max_single_ml_node_processors"] == limits["total_ml_processors"] == 2
    assert "max_model_memory_limit" not in limits  # only when xpack.ml.max_model_memory_limit is set
    sandbox.cluster.ml.ml_memory_bytes = 2 << 30
    limits = es.ml.info().body["limits"]
    # ES calculateEffectiveMaxModelMemoryLimit: largest node minus 10mb process + 30mb native code overhead
    assert limits["total_ml_memory"] == "2gb" and limits["effective_max_model_memory_limit"] == "2008mb"
    sandbox.cluster.ml.ml_memory_bytes = 1000 << 20
    small = es.ml.info().body
    assert small["limits"]["total_ml_memory"] == "1000mb"
    # the default job memory limit never exceeds what could run
    assert small["defaults"]["anomaly_detectors"]["model_memory_limit"] == "960mb"


def test_without_ml_memory_info_says_so_and_deployments_cannot_start(es, sandbox, traced):
    upload(es, traced)
    sandbox.cluster.ml.ml_memory_bytes = 0
    limits = es.ml.info().body["limits"]
    # ES ByteSizeValue.getStringRep() writes a bare "0"; node-derived limits are left out without ML nodes
    assert limits == {"total_ml_memory": "0"}
    with pytest.raises(ApiError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started")
    body = exc.value.body["error"]
    assert exc.value.status_code == 429 and body["type"] == "status_exception"
    assert body["reason"] == "Could not start deployment because no ML nodes with sufficient capacity were found"
    assert body["root_cause"][0]["type"] == "status_exception"
    assert "No ML nodes exist in the cluster" in body["caused_by"]["reason"]
    assert es.ml.get_trained_models_stats(model_id=MODEL).body["trained_model_stats"][0].get("deployment_stats") is None
    sandbox.reset()
    assert sandbox.cluster.ml.ml_memory_bytes > 0  # reset restores the default node
