"""Planner: ordering, ownership, protection, refusals collected at once (against the sandbox, real client)."""

from __future__ import annotations

import pytest

from provisioning import ManifestError, Refused, converge, make_plan
from tests.engine_helpers import MOVIE_MAPPINGS, ctx_for, documents, index, write_docs

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def test_explicit_depends_on_orders_waves(es):
    first = index("a", SETTINGS)
    second = index("b", SETTINGS, depends_on=["index/a"])
    third = index("c", SETTINGS, depends_on=["index/b"])
    plan = make_plan([third, second, first], ctx_for(es))
    assert [[c.key for c in wave] for wave in plan.waves] == [["index/a"], ["index/b"], ["index/c"]]


def test_dependency_cycle_is_a_manifest_error(es):
    a = index("a", SETTINGS, depends_on=["index/b"])
    b = index("b", SETTINGS, depends_on=["index/a"])
    with pytest.raises(ManifestError, match="cycle"):
        make_plan([a, b], ctx_for(es))


def test_every_refusal_is_reported_at_once(es, tmp_path):
    es.indices.create(index="taken")
    es.indices.create(index="also-taken")
    with pytest.raises(Refused) as raised:
        make_plan([index("taken", SETTINGS), index("also-taken", SETTINGS)], ctx_for(es))
    assert "index/taken" in str(raised.value) and "index/also-taken" in str(raised.value)


def test_protection_is_remembered_for_resources_removed_from_the_manifests(es):
    converge([index("keep", SETTINGS, protected=True)], ctx_for(es), command="pytest")
    with pytest.raises(Refused, match="declare it again with `protected: false`"):
        make_plan([], ctx_for(es))
    # unprotect in the manifest (one apply, recorded in the ledger only), then removing it is allowed
    unprotect = make_plan([index("keep", SETTINGS)], ctx_for(es)).changes[0]
    assert (unprotect.action, [(d.path, d.before, d.after) for d in unprotect.diffs]) == (
        "update", [("protected", True, False)])
    converge([index("keep", SETTINGS)], ctx_for(es), command="pytest")
    assert not make_plan([index("keep", SETTINGS)], ctx_for(es)).has_changes
    assert [c.action for c in make_plan([], ctx_for(es)).changes] == ["delete"]


def test_owned_resource_gone_from_the_cluster_only_drops_its_record(es):
    converge([index("gone", SETTINGS)], ctx_for(es), command="pytest")
    es.indices.delete(index="gone-000001")
    plan = make_plan([], ctx_for(es))
    assert [(c.key, c.action, c.live) for c in plan.changes] == [("index/gone", "delete", None)]
    assert "only the ownership record" in plan.changes[0].reason
    converge([], ctx_for(es), command="pytest")
    ctx = ctx_for(es)
    ctx.ledger.load()
    assert ctx.ledger.owned("index") == {}


def test_recreated_after_out_of_band_delete_gets_a_new_version(es):
    converge([index("films", SETTINGS)], ctx_for(es), command="pytest")
    es.indices.delete(index="films-000001")
    plan = make_plan([index("films", SETTINGS)], ctx_for(es))
    assert plan.changes[0].action == "create"
    converge([index("films", SETTINGS)], ctx_for(es), command="pytest")
    assert list(es.indices.get_alias(name="films").body) == ["films-000002"]


def test_documents_into_an_index_of_the_same_apply_wait_for_it(es, tmp_path):
    data = write_docs(tmp_path / "d.json", [{"id": 1}])
    plan = make_plan([documents("seed", "movies", data), index("movies", SETTINGS, MOVIE_MAPPINGS)], ctx_for(es))
    assert [[c.key for c in wave] for wave in plan.waves] == [["index/movies"], ["documents/seed"]]


def test_an_es_error_without_a_reason_is_reported_by_its_type_never_as_none():
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elasticsearch import ApiError

    from provisioning.errors import api_error

    meta = ApiResponseMeta(status=400, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "localhost", 9200))
    error = api_error(ApiError("x_exception", meta, {"error": {"type": "x_exception"}, "status": 400}),
                      resource="index/movies", doing="update")
    assert "None" not in str(error)
    assert str(error) == "index/movies: update: Elasticsearch answered 400 x_exception: x_exception"


def test_a_reference_to_an_object_that_exists_in_the_cluster_is_accepted_one_that_does_not_is_refused(es, tmp_path):
    data = write_docs(tmp_path / "docs.json", [{"id": "1", "title": "x"}])
    loads_into_theirs = documents("seed", "theirs", data)  # an index no manifest declares
    with pytest.raises(ManifestError, match="names an index or alias that is neither declared"):
        make_plan([loads_into_theirs], ctx_for(es))  # a bulk never creates an index implicitly
    es.indices.create(index="theirs")
    plan = make_plan([loads_into_theirs], ctx_for(es))
    assert [(c.key, c.action) for c in plan.changes] == [("documents/seed", "create")]
