"""Issue 12, the adoption rules per kind through the engine: a model uploaded by eland is adopted as it is
(unverified) with its declared source recorded, so a later change of source replaces it, and one deleted and
uploaded again by hand is never re-adopted silently; an endpoint's differences are shown in its adopt change and
planned as an in-place update once adopted.
"""

from __future__ import annotations

import json
import time

import pytest

from provisioning import Options, Refused, Reporter, apply_saved, make_context, make_plan
from provisioning.model import Resource, SourceLocation
from testbed.example_stack import LEDGER, connect

MODEL = "hand__tiny-cross-encoder"


@pytest.fixture
def client(ksb):
    c = connect(ksb.url)
    yield c
    c.close()


def _ctx(client, tmp_path):
    return make_context(client, stack="adopter", reporter=Reporter(quiet=True),
                        options=Options(cache_dir=tmp_path, wait_timeout=60, lock_lease=600))


def _upload_by_hand(client, tmp_path):
    """What eland_import_hub_model --es-model-id does once the model is traced (no es-stack metadata)."""
    from eland.ml.pytorch import PyTorchModel

    from testbed.tiny_model import traced_tiny_cross_encoder

    traced = traced_tiny_cross_encoder()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(traced.config))
    PyTorchModel(client, MODEL).import_model(model_path=str(traced.model_path), config_path=str(config_path),
                                             vocab_path=str(traced.vocab_path))
    return traced


def res(kind, name, spec, adopt=True):
    return Resource(kind, name, spec, SourceLocation("imported.yaml", 1), adopt=adopt)


def test_model_and_endpoint_adoption_rules(ksb, client, tmp_path):
    traced = _upload_by_hand(client, tmp_path)
    client.inference.put(task_type="rerank", inference_id="hand-rerank", inference_config={
        "service": "elasticsearch", "service_settings": {"model_id": MODEL, "num_allocations": 1, "num_threads": 1}})
    model = res("trained_model", MODEL, {"task_type": "text_similarity", "source": {"hub": "hand/tiny-cross-encoder"}})
    endpoint = res("inference_endpoint", "hand-rerank", {
        "task_type": "rerank", "service": "elasticsearch",
        "service_settings": {"model_id": MODEL, "num_allocations": 2, "num_threads": 1}})

    plan = make_plan([model, endpoint], _ctx(client, tmp_path))
    by_key = {c.key: c for c in plan.changes}
    assert by_key[f"trained_model/{MODEL}"].action == "adopt"
    assert "UNVERIFIED" in by_key[f"trained_model/{MODEL}"].reason
    adopt_endpoint = by_key["inference_endpoint/hand-rerank"]
    assert adopt_endpoint.action == "adopt"
    assert [(d.path, d.before, d.after) for d in adopt_endpoint.diffs] == [
        ("service_settings.num_allocations", 1, 2)]
    assert all(op.name == "record_ownership" for c in plan.changes for op in c.operations)

    seq = ksb.log.last_seq
    ctx = _ctx(client, tmp_path)
    apply_saved(make_plan([model, endpoint], ctx), ctx, command="pytest")
    assert {e["path"].split("/")[1] for e in ksb.log.entries(seq) if e["write"]} == {LEDGER}
    assert any("planned by the next plan" in m for m in ctx.reporter.messages)

    # adopted: the endpoint's difference is now an ordinary in-place update; the model plans nothing
    plan = make_plan([model, endpoint], _ctx(client, tmp_path))
    assert {c.key: c.action for c in plan.changes} == {f"trained_model/{MODEL}": "noop",
                                                       "inference_endpoint/hand-rerank": "update"}

    # the recorded source is what the model is: declaring another source replaces it
    moved = res("trained_model", MODEL, {"task_type": "text_similarity", "source": {"path": str(traced.hf_directory)}})
    change = next(c for c in make_plan([moved], _ctx(client, tmp_path)).changes if c.kind == "trained_model")
    assert change.action == "replace" and change.diffs[0].path == "source"

    # deleted and uploaded again by hand: not the adopted model, and `adopt: true` does not adopt it again
    client.inference.delete(inference_id="hand-rerank", force=True)
    client.ml.delete_trained_model(model_id=MODEL, force=True)
    time.sleep(0.01)
    _upload_by_hand(client, tmp_path)
    with pytest.raises(Refused, match="not the one this stack recorded"):
        make_plan([model], _ctx(client, tmp_path))


def test_no_adopt_mark_no_adoption(client, tmp_path):
    client.indices.create(index="handmade", mappings={"properties": {"title": {"type": "text"}}})
    spec = {"mappings": {"properties": {"title": {"type": "text"}}}}
    with pytest.raises(Refused, match="adopt: true"):
        make_plan([res("index", "handmade", spec, adopt=False)], _ctx(client, tmp_path))
    plan = make_plan([res("index", "handmade", spec)], _ctx(client, tmp_path))
    change = plan.changes[0]
    assert change.action == "adopt" and not change.diffs and "concrete index" in change.reason

    # a saved adoption applies exactly (plan --out, apply --plan): the record, nothing else
    from provisioning.planfile import apply_file, save

    save(plan, tmp_path / "plan.json", target="sandbox", folders=[])
    result = apply_file(tmp_path / "plan.json", _ctx(client, tmp_path), target="sandbox")
    assert [c.action for c in result.applied] == ["adopt"]
    assert not make_plan([res("index", "handmade", spec)], _ctx(client, tmp_path)).has_changes
