"""`invoke sandbox` starts the stand-in as its own process, and the real client runs the tutorial against it:
create the index, bulk-load the movies, upload the cross-encoder with eland, create the rerank endpoint, and run
the tutorial's three searches (semantic-reranking-tutorial.md steps 3 to 7)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers

from testbed.tiny_model import traced_tiny_cross_encoder

ROOT = Path(__file__).resolve().parents[2]
MOVIES = json.loads((ROOT / "manifests" / "data" / "movies.json").read_text())
CRIME = {"multi_match": {"query": "crime", "fields": ["plot", "genre"]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def invoked_sandbox():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "invoke", "sandbox", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=60)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.info()
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"invoke sandbox did not start: {process.stdout.read()}") from None
                time.sleep(0.2)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=30)
        client.close()


def titles(response) -> list[str]:
    return [hit["_source"]["title"] for hit in response["hits"]["hits"]]


def test_the_tutorial_runs_against_invoke_sandbox(invoked_sandbox, tmp_path):
    es = invoked_sandbox
    assert es.info()["version"]["number"].startswith("9.")
    es.indices.create(index="movies", mappings={"properties": {
        "title": {"type": "text"}, "plot": {"type": "text"}, "genre": {"type": "text"},
        "release_year": {"type": "short"}}})
    ok, errors = helpers.bulk(es, ({"_index": "movies", "_id": m["id"], "_source": m} for m in MOVIES),
                              refresh=True)
    assert ok == len(MOVIES) and not errors

    # step 4: eland uploads the cross-encoder (the tiny offline one) and starts it
    from eland.ml.pytorch import PyTorchModel

    traced = traced_tiny_cross_encoder()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(traced.config))
    PyTorchModel(es, "cross-encoder__ms-marco-minilm-l-6-v2").import_model(
        model_path=str(traced.model_path), config_path=str(config_path), vocab_path=str(traced.vocab_path))
    # step 5: the rerank endpoint deploys it
    es.inference.put(task_type="rerank", inference_id="my-msmarco-minilm-model", inference_config={
        "service": "elasticsearch", "service_settings": {
            "model_id": "cross-encoder__ms-marco-minilm-l-6-v2", "num_allocations": 1, "num_threads": 1}})

    # step 6: lexical searches
    none = es.search(index="movies", retriever={"standard": {"query": {"query_string": {
        "query": "flesh-eating bad guy", "default_field": "plot"}}}})
    assert none["hits"]["hits"] == []
    lexical = es.search(index="movies", retriever={"standard": {"query": CRIME}})
    assert "The Silence of the Lambs" in titles(lexical)
    # step 7: the same hits, reranked by the uploaded model
    reranked = es.search(index="movies", retriever={"text_similarity_reranker": {
        "retriever": {"standard": {"query": CRIME}}, "field": "plot",
        "inference_id": "my-msmarco-minilm-model", "inference_text": "flesh-eating bad guy"}})
    assert sorted(titles(reranked)) == sorted(titles(lexical))
    scores = [hit["_score"] for hit in reranked["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
