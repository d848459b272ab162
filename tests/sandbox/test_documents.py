"""Documents area of the sandbox (_bulk, single-document CRUD, _refresh, _count, _reindex), through the real client."""

from __future__ import annotations

import re

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, NotFoundError, helpers

from sandbox.documents import writes
from sandbox.search import view


def _error(item: dict) -> dict:
    return next(iter(item.values()))


def test_bulk_reports_item_results_and_item_errors(es):
    response = es.bulk(operations=[
        {"index": {"_index": "books", "_id": "1"}}, {"title": "Dune"},
        {"create": {"_index": "books", "_id": "1"}}, {"title": "Dune again"},
        {"index": {"_index": "books", "_id": ""}}, {"title": "no id"},
        {"index": {"_index": "books", "require_alias": True}}, {"title": "alias required"},
        {"update": {"_index": "books", "_id": "2"}}, {"doc": {"title": "Emma"}, "doc_as_upsert": True},
        {"update": {"_index": "books", "_id": "3"}}, {"doc": {"title": "missing"}},
        {"delete": {"_index": "books", "_id": "404"}},
        {"update": {"_index": "books", "_id": "1"}}, {"doc": {"year": 1965}},
    ])
    assert response["errors"] is True
    items = response["items"]
    first = items[0]["index"]
    assert first["result"] == "created" and first["status"] == 201 and first["_version"] == 1
    assert {"_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term", "status"} <= set(first)
    conflict = items[1]["create"]
    assert conflict["status"] == 409
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == "[1]: version conflict, document already exists (current version [1])"
    empty = items[2]["index"]
    assert empty["status"] == 400 and empty["error"]["reason"] == "if _id is specified it must not be empty"
    alias = items[3]["index"]
    assert alias["status"] == 404 and alias["error"]["type"] == "index_not_found_exception"
    assert "[require_alias] request flag is [true] and [books] is not an alias" in alias["error"]["reason"]
    assert items[4]["update"]["result"] == "created" and items[4]["update"]["status"] == 201
    assert items[5]["update"]["status"] == 404
    assert items[5]["update"]["error"]["type"] == "document_missing_exception"
    assert items[6]["delete"]["result"] == "not_found" and items[6]["delete"]["status"] == 404
    assert items[7]["update"]["result"] == "updated" and items[7]["update"]["_version"] == 2
    # sequence numbers grow with every successful write of the index
    seq = [_error(i)["_seq_no"] for i in items if "_seq_no" in _error(i) and _error(i)["status"] < 300]
    assert seq == sorted(seq) and len(set(seq)) == len(seq)
    assert es.get(index="books", id="1")["_source"] == {"title": "Dune", "year": 1965}


def test_bulk_update_without_change_is_a_noop(es):
    es.index(index="books", id="1", document={"title": "Dune"})
    response = es.bulk(operations=[{"update": {"_index": "books", "_id": "1"}}, {"doc": {"title": "Dune"}}])
    item = response["items"][0]["update"]
    assert item["result"] == "noop" and item["_version"] == 1


def test_bulk_with_index_in_path_and_auto_generated_ids(es):
    response = es.bulk(index="logs", operations=[{"index": {}}, {"msg": "a"}, {"create": {}}, {"msg": "b"}])
    assert response["errors"] is False
    ids = [item[next(iter(item))]["_id"] for item in response["items"]]
    assert len(set(ids)) == 2
    for doc_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{20}", doc_id), doc_id
        assert es.get(index="logs", id=doc_id)["found"] is True


def test_malformed_action_line_rejects_the_whole_request(es):
    body = '{"index": {"_index": "books", "_id": "1"}}\n{"title": "x"}\n{}\n'
    with pytest.raises(BadRequestError) as info:
        es.bulk(body=body)
    assert info.value.status_code == 400
    assert re.search(r"Malformed action/metadata line \[3\], expected FIELD_NAME but found \[END_OBJECT\]",
                     str(info.value.body))
    with pytest.raises(NotFoundError):  # nothing of the rejected request was applied
        es.get(index="books", id="1")


def test_unknown_bulk_action_and_parameter(es):
    with pytest.raises(BadRequestError) as info:
        es.bulk(body='{"upsert": {"_index": "a"}}\n{}\n')
    assert "expected one of [create, delete, index, update] but found [upsert]" in str(info.value.body)
    with pytest.raises(BadRequestError) as info:
        es.bulk(body='{"index": {"_index": "a", "colour": "red"}}\n{}\n')
    assert "contains an unknown parameter [colour]" in str(info.value.body)


def test_single_document_crud(es):
    created = es.index(index="books", id="7", document={"title": "Ulysses"})
    assert created.meta.status == 201 and created["result"] == "created"
    updated = es.index(index="books", id="7", document={"title": "Ulysses", "year": 1922})
    assert updated.meta.status == 200 and updated["result"] == "updated" and updated["_version"] == 2
    with pytest.raises(ConflictError) as info:
        es.create(index="books", id="7", document={"title": "dup"})
    assert info.value.body["error"]["type"] == "version_conflict_engine_exception"
    got = es.get(index="books", id="7")
    assert got["found"] is True and got["_version"] == 2 and got["_source"]["year"] == 1922
    assert es.get(index="books", id="7", source_includes=["year"])["_source"] == {"year": 1922}
    assert es.exists(index="books", id="7") and not es.exists(index="books", id="8")
    with pytest.raises(NotFoundError) as info:
        es.get(index="books", id="8")
    assert info.value.body == {"_index": "books", "_id": "8", "found": False}
    auto = es.index(index="books", document={"title": "auto"})
    assert auto["result"] == "created" and len(auto["_id"]) == 20
    deleted = es.delete(index="books", id="7")
    assert deleted["result"] == "deleted" and deleted["_version"] == 3
    with pytest.raises(NotFoundError) as info:
        es.delete(index="books", id="7")
    assert info.value.body["result"] == "not_found"


def test_get_on_missing_index_is_index_not_found(es):
    with pytest.raises(NotFoundError) as info:
        es.get(index="nothing-here", id="1")
    assert info.value.body["error"]["type"] == "index_not_found_exception"


def test_writes_are_searchable_only_after_a_refresh(es, sandbox):
    index = sandbox.cluster.indices.create("fresh")
    index.settings["index.refresh_interval"] = "-1"  # no periodic refresh: only explicit ones
    es.index(index="fresh", id="1", document={"word": "alpha"})
    assert es.get(index="fresh", id="1")["found"] is True  # GET is real-time
    with pytest.raises(NotFoundError):
        es.get(index="fresh", id="1", realtime=False)  # unless asked not to be
    assert es.count(index="fresh")["count"] == 0
    assert es.search(index="fresh", query={"match": {"word": "alpha"}})["hits"]["total"]["value"] == 0
    refreshed = es.indices.refresh(index="fresh")
    assert refreshed["_shards"]["failed"] == 0
    assert es.count(index="fresh")["count"] == 1
    es.delete(index="fresh", id="1")
    assert es.count(index="fresh")["count"] == 1  # the delete is not visible yet either
    es.index(index="fresh", id="2", document={"word": "beta"}, refresh=True)
    assert es.count(index="fresh")["count"] == 1
    assert es.search(index="fresh")["hits"]["hits"][0]["_id"] == "2"
    response = es.bulk(operations=[{"index": {"_index": "fresh", "_id": "3"}}, {"word": "gamma"}], refresh="wait_for")
    assert "forced_refresh" not in response["items"][0]["index"]
    assert es.count(index="fresh")["count"] == 2


def test_periodic_refresh_makes_writes_visible_after_the_interval(sandbox):
    index = sandbox.cluster.indices.create("ticks")
    writes.index_doc(index, "1", {"word": "alpha"})
    written_at = view.state(index).pending[-1][0]
    index.creation_date = written_at - 500  # the first scheduled refresh is at written_at + 500
    view.periodic_refresh(index, now_ms=written_at + 499)
    assert "1" not in view.state(index).visible
    view.periodic_refresh(index, now_ms=written_at + 500)
    assert "1" in view.state(index).visible


def test_search_idle_index_is_refreshed_by_the_next_search(sandbox):
    index = sandbox.cluster.indices.create("idle")
    writes.index_doc(index, "1", {"word": "alpha"})
    written_at = view.state(index).pending[-1][0]
    index.creation_date = written_at - 999  # next scheduled refresh would be at written_at + 1
    view.state(index).last_search_ms = written_at - 40_000  # no search for 40s: the shard is search-idle
    view.search_access(index, now_ms=written_at)
    assert "1" in view.state(index).visible
    # an explicit refresh_interval disables search-idle: only the schedule counts
    index.settings["index.refresh_interval"] = "1s"
    writes.index_doc(index, "2", {"word": "beta"})
    second = view.state(index).pending[-1][0]
    view.state(index).last_search_ms = second - 40_000
    index.creation_date = second - 10  # next tick at second + 990
    view.search_access(index, now_ms=second + 5)
    assert "2" not in view.state(index).visible


def test_write_block_rejects_writes(es):
    es.index(index="locked", id="1", document={"a": 1})
    es.indices.put_settings(index="locked", settings={"index.blocks.write": True})
    with pytest.raises(ApiError) as info:
        es.index(index="locked", id="2", document={"a": 2})
    assert info.value.status_code == 403 and info.value.body["error"]["type"] == "cluster_block_exception"
    item = es.bulk(operations=[{"delete": {"_index": "locked", "_id": "1"}}])["items"][0]["delete"]
    assert item["status"] == 403


def test_search_hits_can_carry_version_and_seq_no(es):
    es.index(index="books", id="1", document={"a": 1})
    es.index(index="books", id="1", document={"a": 2}, refresh=True)
    hit = es.search(index="books", version=True, seq_no_primary_term=True)["hits"]["hits"][0]
    assert hit["_version"] == 2 and hit["_seq_no"] == 1 and hit["_primary_term"] == 1


def test_refresh_interval_parsing():
    assert view.parse_interval_ms(None) == 1000
    assert view.parse_interval_ms("30s") == 30_000
    assert view.parse_interval_ms("250ms") == 250
    assert view.parse_interval_ms("-1") == -1


def test_count_with_and_without_query(es):
    helpers.bulk(es, [{"_index": "pets", "_id": str(i), "_source": {"kind": k}}
                      for i, k in enumerate(["cat", "dog", "cat"])], refresh=True)
    assert es.count(index="pets")["count"] == 3
    assert es.count(index="pets", query={"term": {"kind.keyword": "cat"}})["count"] == 2
    with pytest.raises(BadRequestError):
        es.count(index="pets", body={"query": {"match_all": {}}, "size": 3})


def test_reindex_copies_matching_refreshed_documents(es):
    helpers.bulk(es, [{"_index": "src", "_id": str(i), "_source": {"n": i, "kind": "odd" if i % 2 else "even"}}
                      for i in range(5)], refresh=True)
    result = es.reindex(source={"index": "src", "query": {"term": {"kind.keyword": "odd"}}}, dest={"index": "dst"},
                        refresh=True)
    assert result["total"] == 2 and result["created"] == 2 and result["updated"] == 0
    assert result["batches"] == 1 and result["failures"] == [] and result["timed_out"] is False
    assert sorted(h["_id"] for h in es.search(index="dst")["hits"]["hits"]) == ["1", "3"]
    again = es.reindex(source={"index": "src"}, dest={"index": "dst"})
    assert again["created"] == 3 and again["updated"] == 2
    conflicts = es.reindex(source={"index": "src"}, dest={"index": "dst", "op_type": "create"}, conflicts="proceed")
    assert conflicts["version_conflicts"] == 5 and conflicts["created"] == 0
    with pytest.raises(ConflictError) as info:  # without conflicts=proceed the first conflict stops it: 409
        es.reindex(source={"index": "src"}, dest={"index": "dst", "op_type": "create"})
    failure = info.value.body["failures"][0]
    assert failure["status"] == 409 and failure["index"] == "dst"
    assert failure["cause"]["type"] == "version_conflict_engine_exception"


def test_reindex_requires_source_and_dest(es):
    with pytest.raises(BadRequestError) as info:
        es.reindex(source={"index": "src"}, dest={})
    assert info.value.body["error"]["type"] == "action_request_validation_exception"


def test_mget_returns_found_and_missing(es):
    es.index(index="books", id="1", document={"title": "Dune"})
    docs = es.mget(index="books", ids=["1", "2"])["docs"]
    assert docs[0]["found"] is True and docs[0]["_source"] == {"title": "Dune"}
    assert docs[1] == {"_index": "books", "_id": "2", "found": False}


def test_update_api_partial_document(es):
    es.index(index="books", id="1", document={"title": "Dune", "meta": {"a": 1}})
    response = es.update(index="books", id="1", doc={"meta": {"b": 2}})
    assert response["result"] == "updated"
    assert es.get(index="books", id="1")["_source"] == {"title": "Dune", "meta": {"a": 1, "b": 2}}
    with pytest.raises(ApiError) as info:
        es.update(index="books", id="nope", doc={"x": 1})
    assert info.value.status_code == 404


def test_document_parsing_errors(es):
    es.index(index="films", id="1", document={"year": 1999, "seen": True})
    with pytest.raises(BadRequestError) as info:
        es.index(index="films", id="2", document={"year": "nineteen"})
    error = info.value.body["error"]
    assert error["type"] == "document_parsing_exception"
    assert "failed to parse field [year] of type [long]" in error["reason"]
    assert es.index(index="films", id="3", document={"year": "2001", "seen": "false"})["result"] == "created"
    item = es.bulk(operations=[{"index": {"_index": "films", "_id": "4"}}, {"_id": "4", "year": 1}])["items"][0]
    assert item["index"]["status"] == 400
    assert "is a metadata field and cannot be added inside a document" in item["index"]["error"]["reason"]
    with pytest.raises(NotFoundError):
        es.get(index="films", id="2")


def test_ingest_pipelines_are_checked_not_silently_skipped(es):
    item = es.bulk(operations=[{"index": {"_index": "piped", "_id": "1", "pipeline": "nope"}}, {"a": 1}])["items"][0]
    assert item["index"]["status"] == 400
    assert item["index"]["error"]["reason"] == "pipeline with id [nope] does not exist"
    es.ingest.put_pipeline(id="p1", processors=[{"set": {"field": "b", "value": 2}}])
    with pytest.raises(BadRequestError) as info:
        es.index(index="piped", id="2", document={"a": 1}, pipeline="p1")
    assert info.value.body["error"]["type"] == "sandbox_unsupported_exception"
    assert es.index(index="piped", id="3", document={"a": 1}, pipeline="_none")["result"] == "created"


def test_string_in_an_integer_field_is_a_document_parsing_error(es):
    es.indices.create(index="aliens", mappings={"properties": {"f": {"type": "integer"}, "n": {"type": "long"}}})
    with pytest.raises(BadRequestError) as info:
        es.index(index="aliens", id="x", document={"f": "Alien"})
    error = info.value.body["error"]
    # ES: "[line:column]" of the value token; Double.parseDouble's NumberFormatException is not an ES exception,
    # so the root cause is the document_parsing_exception itself
    expected = ("[1:6] failed to parse field [f] of type [integer] in document with id 'x'. "
                "Preview of field's value: 'Alien'")
    assert error["type"] == "document_parsing_exception" and error["reason"] == expected
    assert error["root_cause"] == [{"type": "document_parsing_exception", "reason": expected}]
    assert error["caused_by"] == {"type": "number_format_exception", "reason": 'For input string: "Alien"'}
    with pytest.raises(BadRequestError) as long_info:  # long: Numbers.toLong rethrows as IllegalArgumentException
        es.index(index="aliens", id="y", document={"f": 1, "n": "many"})
    assert long_info.value.body["error"]["reason"].startswith("[1:12] failed to parse field [n] of type [long]")
    assert long_info.value.body["error"]["caused_by"]["type"] == "illegal_argument_exception"
    # numeric strings coerce and an empty string is indexed as null (NumberFieldMapper, coerce: true)
    assert es.index(index="aliens", id="z", document={"f": "12", "n": ""})["result"] == "created"
    with pytest.raises(NotFoundError):
        es.get(index="aliens", id="x")


def test_reindex_reports_a_parsing_failure_and_keeps_the_rest_of_the_batch(es):
    es.indices.create(index="src", mappings={"properties": {"f": {"type": "keyword"}}})
    helpers.bulk(es, [{"_index": "src", "_id": i, "_source": {"f": v}}
                      for i, v in (("a", 1), ("b", "Alien"), ("c", 3))], refresh=True)
    es.indices.create(index="dst", mappings={"properties": {"f": {"type": "integer"}}})
    with pytest.raises(BadRequestError) as info:
        es.reindex(source={"index": "src"}, dest={"index": "dst"}, refresh=True)
    body = info.value.body
    # ES AbstractAsyncBulkByScrollAction: one bulk per batch, failed items go to `failures`, the others are written
    assert body["created"] == 2 and body["total"] == 3 and body["batches"] == 1
    (failure,) = body["failures"]
    assert failure["index"] == "dst" and failure["id"] == "b" and failure["status"] == 400
    assert failure["cause"]["type"] == "document_parsing_exception"
    assert "failed to parse field [f] of type [integer] in document with id 'b'" in failure["cause"]["reason"]
    assert failure["cause"]["caused_by"]["type"] == "number_format_exception"
    assert sorted(h["_id"] for h in es.search(index="dst")["hits"]["hits"]) == ["a", "c"]
    with pytest.raises(BadRequestError) as small:  # with one document per batch, the failing batch is the last
        es.reindex(source={"index": "src", "size": 1}, dest={"index": "dst2"}, refresh=True)  # f: long (dynamic)
    assert small.value.body["batches"] == 2 and small.value.body["created"] == 1
