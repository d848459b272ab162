"""Each kind under the one lifecycle (issue 9): a create whose answer was lost is recognised by the re-run as this
stack's own earlier attempt; a no-op plan's request count does not grow with the number of resources of the kind;
a foreign object that took an owned name is never changed or deleted.
"""

from __future__ import annotations

import pytest

from provisioning import Options, Refused, Reporter, apply_saved, make_context, make_plan
from provisioning.model import Resource, SourceLocation
from testbed.example_stack import connect
from tests.engine_helpers import MOVIE_MAPPINGS, write_docs

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from testbed.tiny_model import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("lifecycle-model") / "tiny")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("lifecycle-cache")


@pytest.fixture
def client(ksb):
    c = connect(ksb.url)
    yield c
    c.close()


def ctx_for(client, cache_dir, **options):
    return make_context(client, stack="kinds", reporter=Reporter(quiet=True),
                        options=Options(cache_dir=cache_dir, wait_timeout=60, lock_lease=600, **options))


def converge(resources, client, cache_dir, **options):
    ctx = ctx_for(client, cache_dir, **options)
    plan = make_plan(resources, ctx)
    if plan.has_changes:
        apply_saved(plan, ctx, command="pytest")
    return plan


def res(kind, name, spec):
    return Resource(kind, name, spec, SourceLocation("manifests/kinds.yaml", 1))


def model(path, name="tiny-model"):
    return res("trained_model", name, {"task_type": "text_similarity", "source": {"path": str(path)}})


def endpoint(name="rerank-ep", model_id="tiny-model"):
    return res("inference_endpoint", name, {"task_type": "rerank", "service": "elasticsearch",
                                            "service_settings": {"model_id": model_id, "num_allocations": 1,
                                                                 "num_threads": 1}})


def index(name):
    return res("index", name, {"settings": SETTINGS, "mappings": MOVIE_MAPPINGS})


def documents(name, target, path):
    return res("documents", name, {"index": target, "source": str(path), "id_field": "id"})


def stacks(kind, n, tiny, tmp_path):
    """n resources of one kind, with what they need."""
    if kind == "index":
        return [index(f"i{k}") for k in range(n)]
    if kind == "trained_model":
        return [model(tiny, f"m{k}") for k in range(n)]
    if kind == "inference_endpoint":
        return [model(tiny)] + [endpoint(f"e{k}") for k in range(n)]
    data = write_docs(tmp_path / "docs.json", [{"id": str(k), "title": f"t{k}"} for k in range(5)])
    return [index("movies")] + [documents(f"d{k}", "movies", data) for k in range(n)]


# ---- a create whose answer was lost ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind, method, path", [
    ("index", "PUT", "/i0-000001"),
    ("trained_model", "PUT", "/_ml/trained_models/m0"),
    ("inference_endpoint", "PUT", "/_inference/rerank/e0"),
    ("documents", "PUT", "/_bulk"),
])
def test_a_create_whose_answer_was_lost_is_recognised_as_our_own(kind, method, path, ksb, client, tiny, cache_dir,
                                                                  tmp_path):
    resources = stacks(kind, 1, tiny, tmp_path)
    ksb.lose_answer(method, path)  # served, then the connection drops: the client retries the same request
    converge(resources, client, cache_dir)
    assert ksb.lost.is_set(), "the request whose answer is lost was never sent"
    served = [e for e in ksb.log.entries() if (e["method"], e["path"]) == (method, path)]
    assert len(served) >= 2  # the lost one and the retry
    assert not make_plan(resources, ctx_for(client, cache_dir)).has_changes
    ctx = ctx_for(client, cache_dir)
    ctx.ledger.load()
    assert ctx.ledger.entry(kind, resources[-1].name) is not None


# ---- a no-op plan costs the same whatever the number of resources of a kind --------------------------------
@pytest.mark.parametrize("kind", ["index", "trained_model", "inference_endpoint", "documents"])
def test_a_no_op_plan_sends_as_many_requests_for_one_resource_as_for_three(kind, ksb, client, tiny, cache_dir,
                                                                          tmp_path):
    counts = []
    for n in (1, 3):
        ksb.reset()
        resources = stacks(kind, n, tiny, tmp_path)
        converge(resources, client, cache_dir)
        seq = ksb.log.last_seq
        plan = make_plan(resources, ctx_for(client, cache_dir))
        assert not plan.has_changes
        entries = ksb.log.entries(seq)
        assert not [e for e in entries if e["write"]]
        counts.append(len(entries))
    assert counts[0] == counts[1], counts


# ---- a foreign object under an owned name -------------------------------------------------------------------
def _foreign_model(client, tiny, cache_dir):
    """Someone deletes the stack's model and uploads another one under its id, as eland_import_hub_model does (no
    metadata of ours)."""
    config = client.ml.get_trained_models(model_id="m0").body["trained_model_configs"][0]
    client.ml.delete_trained_model(model_id="m0", force=True)
    task = {k: v for k, v in config["inference_config"]["text_similarity"].items() if k == "tokenization"}
    client.ml.put_trained_model(model_id="m0", body={"model_type": "pytorch", "input": config["input"],
                                                     "inference_config": {"text_similarity": task}})


@pytest.mark.parametrize("kind", ["trained_model", "inference_endpoint"])
@pytest.mark.parametrize("allow_data_loss", [False, True])
def test_a_foreign_object_under_an_owned_name_is_never_changed_or_deleted(kind, allow_data_loss, ksb, client, tiny,
                                                                          cache_dir, tmp_path):
    if kind == "trained_model":
        resources = [model(tiny, "m0")]
        converge(resources, client, cache_dir)
        _foreign_model(client, tiny, cache_dir)
        key = "trained_model/m0"
    else:
        resources = [model(tiny), endpoint("e0")]
        converge(resources, client, cache_dir)
        # someone deletes the stack's endpoint and creates another one under its id, on another service
        client.inference.delete(inference_id="e0")
        client.inference.put(task_type="rerank", inference_id="e0", inference_config={
            "service": "test_reranking_service", "service_settings": {"model_id": "theirs", "api_key": "x"}})
        key = "inference_endpoint/e0"
    ctx = ctx_for(client, cache_dir, allow_data_loss=allow_data_loss)
    with pytest.raises(Refused, match=f"{key}.*(not created by this stack|not the one this stack created)"):
        make_plan(resources, ctx)  # declared: not changed
    with pytest.raises(Refused, match=f"{key}: destroy, but .* is not the one this stack created"):
        make_plan(resources, ctx, destroy=True)
    remaining = [r for r in resources if r.key != key]
    with pytest.raises(Refused, match=f"{key}: no longer declared in the manifests, but"):
        make_plan(remaining, ctx)
