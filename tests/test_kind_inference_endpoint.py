"""The inference_endpoint kind: normalised diffs, write-only secrets, in-place updates vs replacement, readiness."""

from __future__ import annotations

import json
import re

import pytest

from provisioning import Refused, apply_saved, make_plan
from provisioning.context import Options, Reporter, make_context
from provisioning.errors import ClusterError
from provisioning.kinds.inference_endpoint import InferenceEndpointKind
from provisioning.kinds.trained_model import TrainedModelKind
from provisioning.model import Change, Resource, SourceLocation
from testbed.tiny_model import build_tiny_cross_encoder

KIND = InferenceEndpointKind()
MODELS = TrainedModelKind()
SECRET = "sk-test-0123456789abcdef"  # a value that must never show up anywhere but the request to ES


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def make_ctx(client, cache_dir, environ=None):
    ctx = make_context(client, stack="test", options=Options(cache_dir=cache_dir, wait_timeout=60),
                       reporter=Reporter(quiet=True), environ=environ or {})
    ctx.ledger.load()
    return ctx


def endpoint(name="rerank-ep", **spec) -> Resource:
    base = {"task_type": "rerank", "service": "elasticsearch",
            "service_settings": {"model_id": "tiny-model", "num_allocations": 1, "num_threads": 1}}
    return Resource("inference_endpoint", name, {**base, **spec}, SourceLocation("manifests/endpoints.yaml", 2))


def model_resource(path) -> Resource:
    return Resource("trained_model", "tiny-model", {"task_type": "text_similarity", "source": {"path": str(path)}},
                    SourceLocation("manifests/models.yaml", 1))


def plan(ctx, kind, resource, *also):
    """The resource's change in the engine's plan of it and the resources `also` declared beside it."""
    return next(c for c in make_plan([*also, resource], ctx).changes if c.key == resource.key)


def apply(ctx, kind, resource, *also):
    made = make_plan([*also, resource], ctx)
    if made.has_changes:
        apply_saved(made, ctx, command="pytest")
    return next(c for c in made.changes if c.key == resource.key)


def live_endpoint(name, endpoint_body):
    return {"endpoint": {"inference_id": name, **endpoint_body}}


def requests(sandbox, method, path):
    return [e for e in sandbox.log.entries() if e["method"] == method and re.search(path, e["path"])]


# ---- pure parts -------------------------------------------------------------------------------------------------
def test_validate_rerank_needs_a_text_similarity_model():
    model = Resource("trained_model", "tiny-model", {"task_type": "text_embedding", "source": {"hub": "a/b"}},
                     SourceLocation("manifests/models.yaml", 4))
    resource = endpoint(service_settings={"model_id": "tiny-model", "num_allocations": 1,
                                          "adaptive_allocations": {"enabled": True}})
    resource.lines = {"spec.service_settings.model_id": 9}
    from provisioning.es_validation import resource_problems  # the model/task fit rule lives there (issue 10)

    problems = KIND.validate(resource, {model.key: model}) + resource_problems(resource, {model.key: model})
    messages = [p.message for p in problems]
    assert any("needs a text_similarity model" in m and "text_embedding" in m for m in messages)
    assert any("num_threads is required" in m for m in messages)
    assert any("exclude each other" in m for m in messages)
    assert 9 in [p.line for p in problems]
    same_id = endpoint(name="tiny-model")
    assert any("must differ from every trained model id" in p.message
               for p in KIND.validate(same_id, {model.key: model}))
    assert KIND.references(endpoint()) == ["trained_model/tiny-model"]


def test_normalised_live_endpoint_plans_no_change():
    # what ES returns: defaults filled in, adaptive moving the allocation count, no secrets
    live = {"endpoint": {"inference_id": "rerank-ep", "task_type": "rerank", "service": "elasticsearch",
                         "service_settings": {"num_allocations": 1, "num_threads": 1, "model_id": "tiny-model"},
                         "task_settings": {}}}
    assert KIND.diff(endpoint(), live, {}, None).action == "noop"
    assert KIND.diff(endpoint(task_settings={"return_documents": True}), live, {}, None).action == "noop"  # the default
    adaptive = endpoint(service_settings={"model_id": "tiny-model", "num_threads": 1,
                                          "adaptive_allocations": {"enabled": True, "max_number_of_allocations": 4}})
    live_adaptive = json.loads(json.dumps(live))
    live_adaptive["endpoint"]["service_settings"].update(num_allocations=3, adaptive_allocations={
        "enabled": True, "min_number_of_allocations": 0, "max_number_of_allocations": 4})
    assert KIND.diff(adaptive, live_adaptive, {}, None).action == "noop"

    more = KIND.diff(endpoint(service_settings={"model_id": "tiny-model", "num_allocations": 2, "num_threads": 1}),
                     live, {}, None)
    assert more.action == "update" and [d.path for d in more.diffs] == ["service_settings.num_allocations"]
    threads = KIND.diff(endpoint(service_settings={"model_id": "tiny-model", "num_allocations": 1,
                                                   "num_threads": 2}), live, {}, None)
    assert threads.action == "replace" and threads.diffs[0].forces_replacement
    docs = KIND.diff(endpoint(task_settings={"return_documents": False}), live, {}, None)
    assert docs.action == "update" and docs.diffs[0].path == "task_settings.return_documents"
    service = KIND.diff(endpoint(service="openai"), live, {}, None)
    assert service.action == "replace" and "service" in service.reason


def test_dependency_replaced_cascades_to_the_serving_endpoint():
    live = live_endpoint("rerank-ep", {"task_type": "rerank", "service": "elasticsearch"})
    change = Change("inference_endpoint", "rerank-ep", "noop", resource=endpoint(), live=live)
    model_change = Change("trained_model", "tiny-model", "replace")
    cascaded = KIND.dependency_changed(change, model_change, None)
    assert cascaded.action == "replace" and "trained_model/tiny-model is replaced" in cascaded.reason
    assert [op.describe() for op in cascaded.operations][:2] == [
        "DELETE /_inference/rerank/rerank-ep", "PUT /_inference/rerank/rerank-ep?timeout=600s"]
    assert cascaded.hazards and "unavailable" in cascaded.hazards[0].message
    other = Change("trained_model", "other-model", "replace")
    untouched = Change("inference_endpoint", "rerank-ep", "noop", resource=endpoint(), live=live)
    assert KIND.dependency_changed(untouched, other, None).action == "noop"


# ---- secrets (the sandbox keeps them like ES: stored, never returned) --------------------------------------------
def secret_endpoint():
    return Resource("inference_endpoint", "ext-rerank", {
        "task_type": "rerank", "service": "test_reranking_service",
        "service_settings": {"model_id": "my-model"}, "secrets": {"api_key": {"env": "RERANK_API_KEY"}}},
        SourceLocation("manifests/ext.yaml", 1))


def test_secret_is_written_never_shown_and_rotation_plans_an_update(es, sandbox, cache_dir):
    ctx = make_ctx(es, cache_dir, {"RERANK_API_KEY": SECRET})
    resource = secret_endpoint()
    created = apply(ctx, KIND, resource)
    assert created.action == "create"
    assert SECRET not in json.dumps(es.inference.get(inference_id="ext-rerank").body)
    ledger = es.search(index="es-stack-ledger", query={"match_all": {}})
    assert SECRET not in json.dumps(ledger.body)
    entry = make_ctx(es, cache_dir).ledger.entry("inference_endpoint", "ext-rerank")
    assert entry["secrets_hash"].startswith("hmac-sha256:") and entry["secrets_salt"]

    assert plan(make_ctx(es, cache_dir, {"RERANK_API_KEY": SECRET}), KIND, resource).action == "noop"
    assert plan(make_ctx(es, cache_dir, {}), KIND, resource).action == "noop"  # no secret here: unknown, not drift

    rotated_ctx = make_ctx(es, cache_dir, {"RERANK_API_KEY": SECRET + "-rotated"})
    change = plan(rotated_ctx, KIND, resource)
    assert change.action == "update" and change.diffs[0].sensitive
    assert SECRET not in repr(change)
    sandbox.log.clear()
    apply(rotated_ctx, KIND, resource)
    assert requests(sandbox, "PUT", r"/ext-rerank/_update$")
    assert plan(make_ctx(es, cache_dir, {"RERANK_API_KEY": SECRET + "-rotated"}), KIND, resource).action == "noop"
    assert all(SECRET not in m for m in rotated_ctx.reporter.messages + ctx.reporter.messages)


def test_missing_secret_is_refused_at_plan_time_by_name(es, sandbox, cache_dir):
    ctx = make_ctx(es, cache_dir, {})
    with pytest.raises(Refused, match=r"inference_endpoint/ext-rerank: environment variable RERANK_API_KEY is not "
                                      r"set \(secret api_key\)"):
        plan(ctx, KIND, secret_endpoint())


# ---- the elasticsearch service with a real (tiny) model -----------------------------------------------------------
def test_endpoint_lifecycle_on_the_elasticsearch_service(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    model = model_resource(tiny)
    apply(ctx, MODELS, model)
    sandbox.log.clear()
    assert apply(make_ctx(es, cache_dir), KIND, endpoint(), model).action == "create"
    assert requests(sandbox, "PUT", r"^/_inference/rerank/rerank-ep$")
    assert requests(sandbox, "GET", r"/tiny-model/_stats$")  # waited for the deployment
    assert requests(sandbox, "POST", r"^/_inference/rerank/rerank-ep$")  # and probed it
    assert plan(make_ctx(es, cache_dir), KIND, endpoint(), model).action == "noop"

    two = endpoint(service_settings={"model_id": "tiny-model", "num_allocations": 2, "num_threads": 1})
    sandbox.log.clear()
    assert apply(make_ctx(es, cache_dir), KIND, two, model).action == "update"
    assert requests(sandbox, "PUT", r"/rerank-ep/_update$") and not requests(sandbox, "DELETE", r"_inference")
    assert plan(make_ctx(es, cache_dir), KIND, two, model).action == "noop"

    threads = endpoint(service_settings={"model_id": "tiny-model", "num_allocations": 2, "num_threads": 2})
    sandbox.log.clear()
    assert apply(make_ctx(es, cache_dir), KIND, threads, model).action == "replace"
    order = [(e["method"], e["path"]) for e in sandbox.log.entries() if e["method"] in ("PUT", "DELETE")
             and "_inference" in e["path"]]
    assert order[:2] == [("DELETE", "/_inference/rerank/rerank-ep"), ("PUT", "/_inference/rerank/rerank-ep")]
    assert plan(make_ctx(es, cache_dir), KIND, threads, model).action == "noop"

    ctx = make_ctx(es, cache_dir)
    sandbox.log.clear()
    apply_saved(make_plan([model], ctx), ctx, command="pytest")  # the endpoint is no longer declared
    deletes = requests(sandbox, "DELETE", r"^/_inference/")
    assert len(deletes) == 1 and "force" not in deletes[0]["query"]
    assert es.inference.get().body["endpoints"] == [e for e in es.inference.get().body["endpoints"]
                                                    if e["inference_id"] != "rerank-ep"]
    assert make_ctx(es, cache_dir).ledger.entry("inference_endpoint", "rerank-ep") is None


def test_delete_of_an_endpoint_in_use_reports_the_reason(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    model = model_resource(tiny)
    apply(ctx, MODELS, model)
    apply(make_ctx(es, cache_dir), KIND, endpoint(), model)
    es.ingest.put_pipeline(id="uses-rerank", processors=[{"inference": {"model_id": "rerank-ep"}}])
    ctx = make_ctx(es, cache_dir)
    with pytest.raises(ClusterError) as error:
        apply_saved(make_plan([model], ctx), ctx, command="pytest")  # the endpoint is no longer declared
    assert error.value.status == 409
    assert "uses-rerank" in str(error.value)
    assert make_ctx(es, cache_dir).ledger.entry("inference_endpoint", "rerank-ep") is not None  # still ours
