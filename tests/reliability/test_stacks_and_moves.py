"""Issue 12: several stacks on one cluster (the example stack twice, the second with NAME_PREFIX), what `invoke stacks`
reports, adoption refused across stacks, and `moved_from` renaming an index without replacing it.
"""

from __future__ import annotations

import pytest
from elasticsearch import helpers

from provisioning import Options, Refused, Reporter, apply_saved, make_context, make_plan, render_plan
from provisioning.adoption import read_existing, stacks
from provisioning.model import Resource, SourceLocation
from testbed.example_stack import ENDPOINT, INDEX, MODEL_ID, ExampleStack, connect, movie_ids


@pytest.fixture
def client(ksb):
    c = connect(ksb.url)
    yield c
    c.close()


def test_two_prefixed_stacks_coexist_and_destroy_only_their_own(ksb, client, stack, tiny_model_dir,
                                                                traced_artifacts, tmp_path):
    staging_dir = tmp_path / "staging"
    staging_dir.mkdir()
    staging = ExampleStack(model_path=tiny_model_dir, artifacts=traced_artifacts, workdir=staging_dir,
                           stack="staging", extra_vars={"NAME_PREFIX": "staging-"})
    assert {r.name for r in staging.resources() if r.kind == "index"} == {"staging-movies"}

    stack.apply(client)
    staging.apply(client)
    assert not stack.plan(client).has_changes and not staging.plan(client).has_changes
    assert set(client.indices.get_alias(name="movies,staging-movies").body) == {"movies-000001",
                                                                                 "staging-movies-000001"}
    assert client.count(index="staging-movies")["count"] == client.count(index=INDEX)["count"] == len(movie_ids())
    recorded = {s["stack"]: s for s in stacks(client)}
    assert recorded["staging"]["resources"] == recorded[stack.stack]["resources"] == {
        "documents": 1, "index": 1, "inference_endpoint": 1, "trained_model": 1}

    holding = staging.context(client).ledger
    holding.acquire("pytest holds the lock")
    try:
        lock = {s["stack"]: s["lock"] for s in stacks(client)}
        assert lock[stack.stack] is None and "@" in lock["staging"]["holder"]
        assert lock["staging"]["command"] == "pytest holds the lock"
    finally:
        holding.release()

    # `invoke import` leaves out what a stack owns (by the marker on the object or a ledger record)
    found, skipped = read_existing(client)
    assert found == [] and {line.split(":")[0] for line in skipped} >= {
        "index/movies-000001", "index/staging-movies-000001", f"trained_model/{MODEL_ID}",
        f"inference_endpoint/{ENDPOINT}", f"inference_endpoint/staging-{ENDPOINT}"}

    # the staging stack may not adopt the other stack's index, mark or not: refused naming the owner
    theirs = next(r for r in stack.resources() if r.kind == "index")
    theirs.adopt = True
    with pytest.raises(Refused, match=f"cannot adopt .* owned by stack '{stack.stack}'"):
        make_plan([theirs], staging.context(client))

    staging.destroy(client)
    assert not client.indices.exists(index="staging-movies-000001")
    assert client.count(index=INDEX)["count"] == len(movie_ids())
    assert [m["model_id"] for m in client.ml.get_trained_models(model_id="*")["trained_model_configs"]
            if "minilm" in m["model_id"]] == [MODEL_ID]
    assert [e["inference_id"] for e in client.inference.get(inference_id="_all")["endpoints"]
            if not e["inference_id"].startswith(".")] == [ENDPOINT]  # preconfigured endpoints start with "."
    assert not stack.plan(client).has_changes
    stack.destroy(client)
    assert not client.indices.exists(index="movies-000001")
    assert "staging" not in {s["stack"] for s in stacks(client)}


SPEC = {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"title": {"type": "text"}}}}


def _ctx(client, tmp_path):
    return make_context(client, stack="moves", reporter=Reporter(quiet=True),
                        options=Options(cache_dir=tmp_path, wait_timeout=60, lock_lease=600))


def _apply(resources, client, tmp_path):
    ctx = _ctx(client, tmp_path)
    plan = make_plan(resources, ctx)
    if plan.has_changes:
        apply_saved(plan, ctx, command="pytest")
    return plan


def test_moved_from_renames_an_index_without_replacing_it(ksb, client, tmp_path):
    _apply([Resource("index", "notes", SPEC, SourceLocation("m.yaml", 1))], client, tmp_path)
    helpers.bulk(client, [{"_index": "notes", "_id": str(i), "title": f"note {i}"} for i in range(7)], refresh=True)

    moved = Resource("index", "notes-v2", SPEC, SourceLocation("m.yaml", 1), moved_from="index/notes")
    since = ksb.log.entries()[-1]["seq"]
    plan = _apply([moved], client, tmp_path)
    assert [(c.key, c.action) for c in plan.changes] == [("index/notes-v2", "move")]
    assert "->" in render_plan(plan) and "moved from index/notes" in render_plan(plan)
    writes = [(e["method"], e["path"]) for e in ksb.log.entries(since) if e["write"]]
    assert [w for w in writes if "es-stack-ledger" not in w[1]] == [("POST", "/_aliases")]  # no copy, no delete
    assert set(client.indices.get_alias(index="notes-000001").body["notes-000001"]["aliases"]) == {"notes-v2"}
    assert client.count(index="notes-v2")["count"] == 7

    again = make_plan([moved], _ctx(client, tmp_path))
    assert not again.has_changes  # moved_from left in the manifest is harmless once moved
    ledger = _ctx(client, tmp_path).ledger
    ledger.load()
    assert [(e["kind"], e["name"]) for e in ledger.all_entries()] == [("index", "notes-v2")]
