"""Kind `index` against the sandbox: create, no-op, update in place, blue/green replace, delete, ownership."""

from __future__ import annotations

import threading

import pytest
from elasticsearch import Elasticsearch, helpers

from provisioning import ClusterError, Refused, converge, destroy_plan, make_plan
from provisioning.kinds.index_rules import mapping_diffs, settings_diffs
from tests.engine_helpers import MOVIE_MAPPINGS, ctx_for, index, writes_since

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def apply(resources, es, **options):
    return converge(resources, ctx_for(es, **options), command="pytest")


def seed(es, alias, n):
    helpers.bulk(es, ({"_index": alias, "_id": str(i), "_source": {"title": f"movie {i}", "year": 1990 + i % 30}}
                      for i in range(n)), refresh=True)


def alias_targets(es, alias):
    return sorted(es.indices.get_alias(name=alias).body)


def test_create_makes_a_versioned_index_behind_the_alias(es):
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS, {"movies-read": {}})], es)
    assert alias_targets(es, "movies") == ["movies-000001"]
    assert alias_targets(es, "movies-read") == ["movies-000001"]
    mapping = es.indices.get_mapping(index="movies-000001")["movies-000001"]["mappings"]
    assert mapping["_meta"]["managed_by"] == "es-stack" and mapping["_meta"]["stack"] == "test"
    assert mapping["properties"]["year"]["type"] == "integer"
    ctx = ctx_for(es)
    ctx.ledger.load()
    assert ctx.ledger.owned("index")["movies"]["physical"] == "movies-000001"


def test_unchanged_manifest_plans_no_change_whatever_the_settings_form(es):
    settings = {"index": {"number_of_shards": "1"}, "index.number_of_replicas": 0, "refresh_interval": "5s",
                "index.hidden": False,
                "analysis": {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                                                     "filter": ["lowercase", "asciifolding"]}}}}
    mappings = {"dynamic": "strict", "properties": {
        "title": {"type": "text", "analyzer": "folded", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
        "meta": {"type": "object", "properties": {"rating": {"type": "float"}}}}}
    resource = index("movies", settings, mappings)
    apply([resource], es)
    plan = make_plan([resource], ctx_for(es))
    assert [c.action for c in plan.changes] == ["noop"], [c.diffs for c in plan.changes]


def test_dynamic_setting_change_updates_in_place(es, sandbox):
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es)
    changed = index("movies", {**SETTINGS, "number_of_replicas": 1, "refresh_interval": "30s"}, MOVIE_MAPPINGS)
    plan = make_plan([changed], ctx_for(es))
    assert [c.action for c in plan.changes] == ["update"]
    assert {d.path for d in plan.changes[0].diffs} == {"settings.index.number_of_replicas",
                                                       "settings.index.refresh_interval"}
    apply([changed], es)
    live = es.indices.get_settings(index="movies-000001", flat_settings=True)["movies-000001"]["settings"]
    assert live["index.number_of_replicas"] == "1" and live["index.refresh_interval"] == "30s"
    assert alias_targets(es, "movies") == ["movies-000001"]


def test_removed_setting_is_reset_only_if_we_set_it(es):
    apply([index("movies", {**SETTINGS, "refresh_interval": "30s"}, MOVIE_MAPPINGS)], es)
    es.indices.put_settings(index="movies-000001", settings={"index.max_result_window": 5000})  # set by someone else
    plan = make_plan([index("movies", SETTINGS, MOVIE_MAPPINGS)], ctx_for(es))
    diffs = plan.changes[0].diffs
    assert [(d.path, d.after) for d in diffs] == [("settings.index.refresh_interval", None)]
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es)
    live = es.indices.get_settings(index="movies-000001", flat_settings=True)["movies-000001"]["settings"]
    assert "index.refresh_interval" not in live
    assert live["index.max_result_window"] == "5000"


def test_new_field_and_new_alias_update_in_place(es):
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es)
    mappings = {"properties": {**MOVIE_MAPPINGS["properties"], "genre": {"type": "keyword"}}}
    changed = index("movies", SETTINGS, mappings, {"movies-read": {"filter": {"term": {"genre": "crime"}}}})
    plan = make_plan([changed], ctx_for(es))
    assert plan.changes[0].action == "update"
    apply([changed], es)
    mapping = es.indices.get_mapping(index="movies-000001")["movies-000001"]["mappings"]
    assert mapping["properties"]["genre"] == {"type": "keyword"}
    assert es.indices.get_alias(name="movies-read")["movies-000001"]["aliases"]["movies-read"]["filter"] == {
        "term": {"genre": "crime"}}
    assert make_plan([changed], ctx_for(es)).has_changes is False
    # dropping the alias we added removes it
    apply([index("movies", SETTINGS, mappings)], es)
    assert not es.indices.exists_alias(name="movies-read")


@pytest.mark.parametrize("change", ["shards", "field_type", "analysis", "removed_field"])
def test_changes_es_cannot_apply_in_place_plan_a_replacement(change):
    base_mappings = {"properties": {"title": {"type": "text"}, "year": {"type": "integer"}}}
    live_settings = {"index.number_of_shards": "1", "index.number_of_replicas": "0"}
    if change == "shards":
        diffs = settings_diffs({"number_of_shards": 2}, live_settings, None)
    elif change == "field_type":
        diffs = mapping_diffs({"properties": {"year": {"type": "keyword"}}}, base_mappings, None)
    elif change == "analysis":
        diffs = settings_diffs({"analysis": {"analyzer": {"a": {"type": "standard"}}}}, live_settings, None)
    else:
        diffs = mapping_diffs({"properties": {"title": {"type": "text"}}}, base_mappings, base_mappings)
    assert diffs and all(d.forces_replacement for d in diffs), diffs


def test_replacement_keeps_every_document_and_the_alias_never_dangles(es, sandbox):
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS, {"movies-read": {}})], es)
    seed(es, "movies", 120)
    changed = index("movies", {**SETTINGS, "number_of_shards": 2}, MOVIE_MAPPINGS, {"movies-read": {}})
    plan = make_plan([changed], ctx_for(es))
    assert plan.changes[0].action == "replace"
    assert "movies-000002" in plan.changes[0].reason

    reader = Elasticsearch(sandbox.url, request_timeout=30)
    seen: list[object] = []
    stop = threading.Event()

    def read_continuously():
        while not stop.is_set():
            try:
                seen.append(reader.count(index="movies")["count"])
            except Exception as exc:  # a missing alias would be a 404 here
                seen.append(exc)

    thread = threading.Thread(target=read_continuously)
    sandbox.faults = type(sandbox.faults).from_dict({"latency_ms": 5})  # widen the window between steps
    start = sandbox.log.last_seq
    thread.start()
    try:
        apply([changed], es)
    finally:
        stop.set()
        thread.join()
        sandbox.faults = type(sandbox.faults)()
    assert seen and all(s == 120 for s in seen), [s for s in seen if s != 120][:3]
    assert alias_targets(es, "movies") == ["movies-000002"]
    assert alias_targets(es, "movies-read") == ["movies-000002"]
    assert not es.indices.exists(index="movies-000001")
    assert es.count(index="movies")["count"] == 120
    # the request sequence: create new, reindex, ONE alias swap, and only then delete the old index
    writes = [(e["method"], e["path"]) for e in writes_since(sandbox, start) if "es-stack-ledger" not in e["path"]]
    create_at = writes.index(("PUT", "/movies-000002"))
    swap_at = writes.index(("POST", "/_aliases"))
    delete_at = writes.index(("DELETE", "/movies-000001"))
    assert create_at < writes.index(("POST", "/_reindex")) < swap_at < delete_at
    assert [w for w in writes if w[1] == "/_aliases"] == [("POST", "/_aliases")]
    settings = es.indices.get_settings(index="movies-000002", flat_settings=True)["movies-000002"]["settings"]
    assert settings["index.number_of_shards"] == "2"
    assert make_plan([changed], ctx_for(es)).has_changes is False


@pytest.mark.parametrize("failure", ["reindex_rejected", "alias_swap_rejected"])
def test_failed_replacement_leaves_the_old_index_serving(es, sandbox, failure):
    apply([index("movies", SETTINGS, {"properties": {"title": {"type": "text"}}})], es)
    helpers.bulk(es, [{"_index": "movies", "_id": "1", "_source": {"title": "Alien"}}], refresh=True)
    path = "^/_reindex$" if failure == "reindex_rejected" else "^/_aliases$"
    # the sandbox does not yet reject "Alien" for an integer field, so the failure is injected
    sandbox.faults = type(sandbox.faults).from_dict({"rules": [{"path": path, "method": "POST", "status": 400}]})
    broken = index("movies", SETTINGS, {"properties": {"title": {"type": "integer"}}})
    with pytest.raises(ClusterError) as raised:
        apply([broken], es)
    sandbox.faults = type(sandbox.faults)()
    assert "index/movies" in str(raised.value) and "manifests/test.yaml:1" in str(raised.value)
    assert alias_targets(es, "movies") == ["movies-000001"]
    assert not es.indices.exists(index="movies-000002")
    assert es.count(index="movies")["count"] == 1
    settings = es.indices.get_settings(index="movies-000001", flat_settings=True)["movies-000001"]["settings"]
    assert settings.get("index.blocks.write") in (None, "false")  # writes allowed again
    es.index(index="movies", id="2", document={"title": "Heat"})


def test_removed_index_is_deleted_but_not_while_it_holds_documents(es):
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS), index("scratch", SETTINGS)], es)
    seed(es, "movies", 3)
    losing = make_plan([], ctx_for(es))  # planned and shown, refused by apply without the flag
    assert [h.message for _, h in losing.hazards] == ["holds 3 documents; deleting it loses them"]
    with pytest.raises(Refused, match="--allow-data-loss"):
        apply([], es)
    plan = make_plan([index("movies", SETTINGS, MOVIE_MAPPINGS)], ctx_for(es))
    assert [(c.key, c.action) for c in plan.changes] == [("index/movies", "noop"), ("index/scratch", "delete")]
    apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es)
    assert not es.indices.exists(index="scratch-000001")
    apply([], es, allow_data_loss=True)
    assert not es.indices.exists(index="movies-000001")


def test_protected_index_is_refused_for_replace_and_destroy(es):
    protected = index("movies", SETTINGS, MOVIE_MAPPINGS, protected=True)
    apply([protected], es)
    with pytest.raises(Refused, match="protected: false"):
        destroy_plan([protected], ctx_for(es, allow_data_loss=True))
    shards = index("movies", {**SETTINGS, "number_of_shards": 3}, MOVIE_MAPPINGS, protected=True)
    with pytest.raises(Refused, match="protected"):
        make_plan([shards], ctx_for(es))


def test_an_index_the_tool_did_not_create_is_never_adopted(es, sandbox):
    es.indices.create(index="movies", mappings={"properties": {"title": {"type": "keyword"}}})
    start = sandbox.log.last_seq
    with pytest.raises(Refused, match="not created by this stack"):
        apply([index("movies", SETTINGS, MOVIE_MAPPINGS)], es)
    assert writes_since(sandbox, start) == []
    # an alias named like the resource over somebody else's index is refused too
    es.indices.create(index="films-v1", aliases={"films": {}})
    with pytest.raises(Refused, match="alias over index films-v1"):
        make_plan([index("films", SETTINGS)], ctx_for(es))


def test_destroy_deletes_only_what_the_stack_owns(es):
    es.indices.create(index="foreign")
    helpers.bulk(es, [{"_index": "foreign", "_id": "1", "_source": {"x": 1}}], refresh=True)
    resources = [index("movies", SETTINGS, MOVIE_MAPPINGS)]
    apply(resources, es)
    converge(resources, ctx_for(es), command="pytest destroy", destroy=True)
    assert not es.indices.exists(index="movies-000001")
    assert es.count(index="foreign")["count"] == 1
    assert make_plan(resources, ctx_for(es)).changes[0].action == "create"
