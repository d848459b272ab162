"""Issue 4 end to end: manifests -> plan -> apply with real eland tracing, the real client and the sandbox.

- applying the tiny model twice uploads it once;
- changing its source replaces the model, then the endpoint that serves it;
- an upload interrupted half-way converges on the next apply.
"""

from __future__ import annotations

import textwrap

import pytest
from elasticsearch import Elasticsearch

from provisioning import Options, Reporter, converge, load_manifests, make_context, make_plan
from provisioning.errors import ProvisioningError
from provisioning.model_import.upload import definition_status
from testbed.tiny_model import build_tiny_cross_encoder

DEFINITION = r"/_ml/trained_models/[^/]+/definition/"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"a": build_tiny_cross_encoder(root / "tiny-a"),
            "b": build_tiny_cross_encoder(root / "tiny-b", seed=1),
            # several 1 MiB parts, so an upload can be cut in the middle
            "big": build_tiny_cross_encoder(root / "big", hidden_size=128, intermediate_size=256, vocab_size=3000)}


def write_manifests(directory, model_path):
    directory.mkdir(exist_ok=True)
    (directory / "reranker.yaml").write_text(textwrap.dedent(f"""\
        kind: trained_model
        name: tiny-reranker
        spec:
          task_type: text_similarity
          source: {{path: {model_path}}}
        ---
        kind: inference_endpoint
        name: tiny-rerank
        spec:
          task_type: rerank
          service: elasticsearch
          service_settings: {{model_id: tiny-reranker, num_allocations: 1, num_threads: 1}}
        """))
    return load_manifests(directory)


def context(client, cache_dir):
    return make_context(client, stack="e2e", options=Options(cache_dir=cache_dir, wait_timeout=60, upload_workers=4),
                        reporter=Reporter(quiet=True))


def log(sandbox, method, pattern):
    import re

    return [e for e in sandbox.log.entries() if e["method"] == method and re.search(pattern, e["path"])]


def rerank(es):
    result = es.inference.rerank(inference_id="tiny-rerank", query="a killer", input=["a serial killer", "a moon"])
    return sorted((r["index"], round(r["relevance_score"], 6)) for r in result["rerank"])


def test_applying_twice_uploads_once(es, sandbox, models, tmp_path):
    resources = write_manifests(tmp_path / "manifests", models["a"])
    result = converge(resources, context(es, tmp_path / "cache"), command="test apply")
    assert {c.key: c.action for c in result.applied} == {"trained_model/tiny-reranker": "create",
                                                          "inference_endpoint/tiny-rerank": "create"}
    assert log(sandbox, "PUT", DEFINITION) and log(sandbox, "POST", r"^/_inference/rerank/tiny-rerank$")
    assert len(rerank(es)) == 2

    sandbox.log.clear()
    second = converge(resources, context(es, tmp_path / "cache"), command="test apply")
    assert not second.applied and not second.plan.has_changes
    assert log(sandbox, "PUT", DEFINITION) == []  # nothing uploaded the second time
    assert [e for e in sandbox.log.entries() if e["write"]] == []  # and nothing written at all


def test_changed_source_replaces_the_model_then_its_endpoint(es, sandbox, models, tmp_path):
    converge(write_manifests(tmp_path / "manifests", models["a"]), context(es, tmp_path / "cache"),
             command="test apply")
    before = rerank(es)
    resources = write_manifests(tmp_path / "manifests", models["b"])
    plan = make_plan(resources, context(es, tmp_path / "cache"))
    assert {c.key: c.action for c in plan.changes} == {"trained_model/tiny-reranker": "replace",
                                                        "inference_endpoint/tiny-rerank": "replace"}
    endpoint_change = next(c for c in plan.changes if c.kind == "inference_endpoint")
    assert "trained_model/tiny-reranker is replaced" in endpoint_change.reason
    assert [[c.key for c in wave] for wave in plan.waves] == [["trained_model/tiny-reranker"],
                                                             ["inference_endpoint/tiny-rerank"]]

    sandbox.log.clear()
    converge(resources, context(es, tmp_path / "cache"), command="test apply")
    writes = [(e["method"], e["path"]) for e in sandbox.log.entries() if e["write"] and "ledger" not in e["path"]]
    index = {w: i for i, w in reversed(list(enumerate(writes)))}  # first occurrence of each
    assert index[("DELETE", "/_ml/trained_models/tiny-reranker")] < index[("PUT", "/_ml/trained_models/tiny-reranker")]
    assert index[("PUT", "/_ml/trained_models/tiny-reranker/vocabulary")] < \
        index[("DELETE", "/_inference/rerank/tiny-rerank")] < index[("PUT", "/_inference/rerank/tiny-rerank")]
    after = rerank(es)
    assert after != before  # the endpoint now serves the new weights
    assert not make_plan(resources, context(es, tmp_path / "cache")).has_changes


def test_interrupted_upload_converges_on_the_next_apply(es, sandbox, models, tmp_path):
    resources = write_manifests(tmp_path / "manifests", models["big"])
    fragile = Elasticsearch(sandbox.url, max_retries=0, request_timeout=30)  # the run dies with the connection
    sandbox.faults = type(sandbox.faults).from_dict(
        {"rules": [{"path": DEFINITION, "method": "PUT", "nth": 2, "drop": True}]})
    with pytest.raises(ProvisioningError, match="interrupted"):
        converge(resources, context(fragile, tmp_path / "cache"), command="test apply")
    status = definition_status(es, "tiny-reranker")
    assert status is not None and status["fully_defined"] is False  # half-defined, as a crash leaves it
    assert es.inference.get().body["endpoints"] == [e for e in es.inference.get().body["endpoints"]
                                                    if e["inference_id"] != "tiny-rerank"]  # nothing built on it
    sandbox.faults = type(sandbox.faults)()

    plan = make_plan(resources, context(es, tmp_path / "cache"))
    model_change = next(c for c in plan.changes if c.kind == "trained_model")
    assert model_change.action == "update" and "interrupted" in model_change.reason
    converge(resources, context(es, tmp_path / "cache"), command="test apply")
    assert definition_status(es, "tiny-reranker")["fully_defined"] is True
    assert len(rerank(es)) == 2
    assert not make_plan(resources, context(es, tmp_path / "cache")).has_changes
