"""The real eland uploads a cross-encoder to the sandbox, which then really runs it.

Proof that the sandbox executes the uploaded model: the scores `_inference/rerank` returns equal the scores of
the same pairs computed locally with the traced TorchScript and with the untraced Hugging Face model. The model is
the tiny cross-encoder of tests/support/tiny_model.py; nothing is downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from elasticsearch import ApiError, BadRequestError

from testbed.tiny_model import hf_scores, local_scores, traced_tiny_cross_encoder

QUERY = "flesh-eating bad guy"
PLOTS = [
    "a young fbi trainee must get help from an imprisoned and manipulative cannibal killer to catch another serial "
    "killer who skins his victims",
    "the aging patriarch of an organized crime dynasty transfers control of his empire to his son",
    "a cowboy doll is threatened when a new spaceman figure supplants him as top toy",
]


@pytest.fixture(scope="module")
def traced():
    return traced_tiny_cross_encoder()


@pytest.fixture
def eland_model(es, traced, tmp_path):
    """Upload with eland's PyTorchModel (config, definition parts, vocabulary) and start the deployment."""
    from eland.ml.pytorch import PyTorchModel

    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(traced.config))
    model = PyTorchModel(es, "tiny-cross-encoder")
    model.import_model(model_path=str(traced.model_path), config_path=str(config_path),
                       vocab_path=str(traced.vocab_path), chunk_size=64 * 1024)  # several parts, as for big models
    model.start()
    return model


def test_rerank_scores_are_the_uploaded_models_scores(es, traced, eland_model):
    es.inference.put(task_type="rerank", inference_id="my-msmarco-minilm-model", inference_config={
        "service": "elasticsearch",
        "service_settings": {"model_id": "tiny-cross-encoder", "num_allocations": 1, "num_threads": 1}})
    ranked = es.inference.rerank(inference_id="my-msmarco-minilm-model", query=QUERY, input=PLOTS).body["rerank"]
    served = {r["index"]: r["relevance_score"] for r in ranked}
    traced_local = local_scores(traced, QUERY, PLOTS)
    untraced = hf_scores(traced, QUERY, PLOTS)
    assert len(set(round(s, 6) for s in traced_local)) == len(PLOTS), "scores must differ to prove anything"
    assert [served[i] for i in range(len(PLOTS))] == pytest.approx(traced_local, abs=1e-5)
    assert [served[i] for i in range(len(PLOTS))] == pytest.approx(untraced, abs=1e-4)
    assert [r["relevance_score"] for r in ranked] == sorted(served.values(), reverse=True)


def test_eland_infer_and_stop(es, traced, eland_model):
    result = eland_model.infer(docs=[{"text_field": PLOTS[0]}], inference_config={"text_similarity": {"text": QUERY}})
    assert result["inference_results"][0]["predicted_value"] == pytest.approx(
        local_scores(traced, QUERY, PLOTS[:1])[0], abs=1e-5)
    eland_model.stop()
    stats = es.ml.get_trained_models_stats(model_id="tiny-cross-encoder").body["trained_model_stats"][0]
    assert "deployment_stats" not in stats
    assert "tiny-cross-encoder" in type(eland_model).list(es)


def test_truncated_upload_fails_to_start_with_es_error(es, sandbox, traced, tmp_path):
    """eland's upload is cut off at the last definition part (a proxy refusing it); the start then fails as ES does."""
    from eland.ml.pytorch import PyTorchModel

    chunk = 32 * 1024
    last = -(-len(traced.definition()) // chunk) - 1
    assert last >= 1
    faults = {"rules": [{"path": f"^/_ml/trained_models/truncated-model/definition/{last}$", "method": "PUT",
                         "status": 413}]}
    es.perform_request("PUT", "/_sandbox/faults", headers={"content-type": "application/json"}, body=faults)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(traced.config))
    model = PyTorchModel(es, "truncated-model")
    with pytest.raises(ApiError):
        model.import_model(model_path=str(traced.model_path), config_path=str(config_path),
                           vocab_path=str(traced.vocab_path), chunk_size=chunk)
    es.perform_request("DELETE", "/_sandbox/faults")
    model.put_vocab(str(traced.vocab_path))
    status = es.ml.get_trained_models(model_id="truncated-model", include="definition_status").body
    assert status["trained_model_configs"][0]["fully_defined"] is False
    with pytest.raises(BadRequestError) as exc:
        model.start()
    assert exc.value.body["error"]["reason"] == (
        "Model definition truncated. Unable to deserialize trained model definition [truncated-model]")


def test_eland_import_hub_model_cli_against_the_sandbox(es, sandbox, traced):
    """The tutorial's command, with a local directory as the hub model id."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "eland.cli.eland_import_hub_model", "--url", sandbox.url,
               "--hub-model-id", str(traced.hf_directory), "--es-model-id", "tiny-cli-model",
               "--task-type", "text_similarity", "--clear-previous", "--start"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = es.ml.get_trained_models_stats(model_id="tiny-cli-model").body["trained_model_stats"][0]
    assert stats["deployment_stats"]["state"] == "started"
    result = es.ml.infer_trained_model(model_id="tiny-cli-model", docs=[{"text_field": PLOTS[1]}],
                                       inference_config={"text_similarity": {"text": QUERY}}).body
    assert result["inference_results"][0]["predicted_value"] == pytest.approx(
        local_scores(traced, QUERY, PLOTS[1:2])[0], abs=1e-5)


def test_tutorial_reranker_orders_hits_by_the_uploaded_model(es, traced, eland_model):
    """The tutorial's search: a multi_match retriever wrapped in text_similarity_reranker on the real model."""
    es.inference.put(task_type="rerank", inference_id="my-msmarco-minilm-model", inference_config={
        "service": "elasticsearch",
        "service_settings": {"model_id": "tiny-cross-encoder", "num_allocations": 1, "num_threads": 1}})
    for number, plot in enumerate(PLOTS):
        es.index(index="movies", id=str(number), document={"plot": plot, "genre": "crime"})
    es.indices.refresh(index="movies")
    hits = es.search(index="movies", retriever={"text_similarity_reranker": {
        "retriever": {"standard": {"query": {"multi_match": {"query": "crime", "fields": ["plot", "genre"]}}}},
        "field": "plot", "inference_id": "my-msmarco-minilm-model", "inference_text": QUERY}})["hits"]["hits"]
    expected = local_scores(traced, QUERY, PLOTS)
    assert [hit["_id"] for hit in hits] == [str(i) for i in sorted(range(len(PLOTS)), key=lambda i: -expected[i])]
