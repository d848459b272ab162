"""Indices area of the sandbox (indices, mappings, settings, aliases, templates, pipelines), via the real client."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from elasticsearch import ApiError, BadRequestError, NotFoundError

from sandbox.indices.store import IndexStore


def _raw(url: str, method: str = "GET") -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _error(call, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


# ---- create / get / delete ----------------------------------------------------------------------------------
def test_create_get_exists_delete_round_trip(es):
    created = es.indices.create(index="books", mappings={"properties": {"title": {"type": "text"}}})
    assert created.body == {"acknowledged": True, "shards_acknowledged": True, "index": "books"}
    assert es.indices.exists(index="books")
    body = es.indices.get(index="books")["books"]
    assert body["aliases"] == {}
    assert body["mappings"] == {"properties": {"title": {"type": "text"}}}
    assert set(body["settings"]) == {"index"}
    assert es.indices.delete(index="books").body == {"acknowledged": True}
    assert not es.indices.exists(index="books")


def test_creating_an_existing_index_is_resource_already_exists(es):
    es.indices.create(index="books")
    uuid = es.indices.get_settings(index="books")["books"]["settings"]["index"]["uuid"]
    error = _error(es.indices.create, index="books")
    assert error.meta.status == 400
    assert error.body["error"]["type"] == "resource_already_exists_exception"
    assert error.body["error"]["reason"] == f"index [books/{uuid}] already exists"
    assert error.body["error"]["index_uuid"] == uuid


@pytest.mark.parametrize("name, why", [("Books", "must be lowercase"),
                                       ("-books", "must not start with '_', '-', or '+'"),
                                       ("bo#oks", "must not contain '#'")])
def test_invalid_index_names_are_refused(es, name, why):
    error = _error(es.indices.create, index=name)
    assert error.body["error"]["type"] == "invalid_index_name_exception"
    assert error.body["error"]["reason"] == f"Invalid index name [{name}], {why}"


def test_missing_index_is_404_unless_ignore_unavailable(es):
    error = _error(es.indices.get, index="nope")
    assert error.meta.status == 404
    assert error.body["error"]["type"] == "index_not_found_exception"
    assert error.body["error"]["resource.id"] == "nope"
    assert es.indices.get(index="nope", ignore_unavailable=True).body == {}
    assert es.indices.get(index="nope*").body == {}
    assert _error(es.indices.get, index="nope*", allow_no_indices=False).meta.status == 404


def test_get_features_and_human(es):
    es.indices.create(index="books", aliases={"shelf": {}})
    only = es.indices.get(index="books", features="aliases,settings")["books"]
    assert "mappings" not in only and only["aliases"] == {"shelf": {}}
    assert "creation_date_string" not in only["settings"]["index"]
    human = es.indices.get(index="books", human=True)["books"]["settings"]["index"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", human["creation_date_string"])
    assert human["version"]["created_string"].startswith("9.")


def test_closed_indices_follow_expand_wildcards(es):
    es.indices.create(index="logs-1")
    es.indices.create(index="logs-2")
    closed = es.indices.close(index="logs-2")
    assert closed["indices"] == {"logs-2": {"closed": True}}
    assert set(es.indices.get(index="logs-*")) == {"logs-1"}
    assert set(es.indices.get(index="logs-*", expand_wildcards="closed")) == {"logs-2"}
    es.indices.open(index="logs-2")
    assert set(es.indices.get(index="logs-*")) == {"logs-1", "logs-2"}


def test_delete_refuses_aliases_and_wildcards_by_default(es):
    es.indices.create(index="books", aliases={"shelf": {}})
    error = _error(es.indices.delete, index="shelf")
    assert error.meta.status == 400
    assert error.body["error"]["reason"] == ("The provided expression [shelf] matches an alias, specify the "
                                             "corresponding concrete indices instead.")
    # ES 8+/9.x default action.destructive_requires_name=true
    assert _error(es.indices.delete, index="boo*").body["error"]["reason"] == \
        "Wildcard expressions or all indices are not allowed"
    es.cluster.put_settings(persistent={"action.destructive_requires_name": False})
    es.indices.delete(index="boo*")
    assert not es.indices.exists(index="books")


def test_date_math_index_and_alias_names(es):
    es.indices.create(index="<logs_{2022-12-31||/d{yyyy-MM-dd}}>", aliases={"<cur_{2022-12-31||/M{yyyy.MM}}>": {}})
    assert es.indices.exists(index="logs_2022-12-31")
    settings = es.indices.get_settings(index="logs_2022-12-31")["logs_2022-12-31"]["settings"]["index"]
    assert settings["provided_name"] == "<logs_{2022-12-31||/d{yyyy-MM-dd}}>"
    assert es.indices.exists_alias(name="cur_2022.12")


# ---- settings -----------------------------------------------------------------------------------------------
def test_settings_are_normalised_to_strings_and_generated_ones_added(es):
    es.indices.create(index="books", settings={"number_of_shards": 2, "index": {"refresh_interval": "5s"},
                                               "index.blocks.write": False})
    flat = es.indices.get_settings(index="books", flat_settings=True)["books"]["settings"]
    assert flat["index.number_of_shards"] == "2"
    assert flat["index.number_of_replicas"] == "1"
    assert flat["index.refresh_interval"] == "5s"
    assert flat["index.blocks.write"] == "false"
    assert flat["index.provided_name"] == "books"
    assert flat["index.routing.allocation.include._tier_preference"] == "data_content"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", flat["index.uuid"])
    assert re.fullmatch(r"9\d{6}", flat["index.version.created"])
    assert flat["index.creation_date"].isdigit()
    nested = es.indices.get_settings(index="books")["books"]["settings"]["index"]
    assert nested["routing"]["allocation"]["include"]["_tier_preference"] == "data_content"


def test_unknown_setting_is_refused(es):
    error = _error(es.indices.create, index="books", settings={"index.garbage": 1})
    assert error.body["error"]["type"] == "illegal_argument_exception"
    assert error.body["error"]["reason"].startswith("unknown setting [index.garbage] please check")


def test_get_settings_name_filter_and_defaults(es):
    es.indices.create(index="books", settings={"number_of_shards": 1})
    only = es.indices.get_settings(index="books", name="index.number_of_s*")["books"]["settings"]
    assert only == {"index": {"number_of_shards": "1"}}
    with_defaults = es.indices.get_settings(index="books", include_defaults=True, flat_settings=True)["books"]
    assert with_defaults["defaults"]["index.refresh_interval"] == "1s"
    assert "index.refresh_interval" not in with_defaults["settings"]


def test_static_settings_need_a_closed_index_or_reopen(es):
    es.indices.create(index="books")
    uuid = es.indices.get_settings(index="books")["books"]["settings"]["index"]["uuid"]
    error = _error(es.indices.put_settings, index="books", settings={"index.codec": "best_compression"})
    assert error.body["error"]["reason"] == ("Can't update non dynamic settings [[index.codec]] for open indices "
                                             f"[[books/{uuid}]]")
    es.indices.put_settings(index="books", settings={"index.number_of_replicas": 0})  # dynamic: fine
    es.indices.put_settings(index="books", settings={"index.codec": "best_compression"}, reopen=True)
    settings = es.indices.get_settings(index="books")["books"]["settings"]["index"]
    assert settings["codec"] == "best_compression" and settings["number_of_replicas"] == "0"
    shards = _error(es.indices.put_settings, index="books", settings={"number_of_shards": 3})
    assert shards.body["error"]["reason"].startswith(
        "Can't update non dynamic settings [[index.number_of_shards]] for open indices")
    final = _error(es.indices.put_settings, index="books", settings={"number_of_shards": 3}, reopen=True)
    assert final.body["error"]["reason"] == "final books setting [index.number_of_shards], not updateable"


def test_analysis_settings_are_static_and_validated(es):
    es.indices.create(index="books")
    analysis = {"analysis": {"analyzer": {"folded": {"tokenizer": "standard", "filter": ["lowercase"]}}}}
    assert _error(es.indices.put_settings, index="books", settings=analysis).meta.status == 400
    es.indices.close(index="books")
    es.indices.put_settings(index="books", settings=analysis)
    es.indices.open(index="books")
    missing = {"analysis": {"analyzer": {"bad": {"tokenizer": "standard", "filter": ["nope"]}}}}
    error = _error(es.indices.create, index="other", settings=missing)
    assert error.body["error"]["reason"] == "Custom Analyzer [bad] failed to find filter under name [nope]"


def test_null_resets_and_preserve_existing(es):
    es.indices.create(index="books", settings={"refresh_interval": "5s"})
    es.indices.put_settings(index="books", settings={"refresh_interval": "9s", "max_result_window": 500},
                            preserve_existing=True)
    settings = es.indices.get_settings(index="books")["books"]["settings"]["index"]
    assert settings["refresh_interval"] == "5s" and settings["max_result_window"] == "500"
    es.indices.put_settings(index="books", settings={"refresh_interval": None})
    assert "refresh_interval" not in es.indices.get_settings(index="books")["books"]["settings"]["index"]


# ---- mappings -----------------------------------------------------------------------------------------------
def test_put_mapping_merges_and_refuses_type_changes(es):
    es.indices.create(index="books", mappings={"properties": {"title": {"type": "text", "meta": {"a": "1"}}}})
    es.indices.put_mapping(index="books", properties={
        "title": {"type": "text", "meta": {"b": "2"}, "fields": {"raw": {"type": "keyword"}}},
        "author.name": {"type": "keyword"},
    }, meta={"owner": "team"})
    mapping = es.indices.get_mapping(index="books")["books"]["mappings"]
    assert mapping["properties"]["title"] == {"type": "text", "meta": {"b": "2"},
                                              "fields": {"raw": {"type": "keyword"}}}
    assert mapping["properties"]["author"] == {"properties": {"name": {"type": "keyword"}}}
    assert mapping["_meta"] == {"owner": "team"}
    error = _error(es.indices.put_mapping, index="books", properties={"title": {"type": "keyword"}})
    assert error.body["error"]["type"] == "illegal_argument_exception"
    assert error.body["error"]["reason"] == "mapper [title] cannot be changed from type [text] to [keyword]"
    conflict = _error(es.indices.put_mapping, index="books",
                      properties={"title": {"type": "text", "analyzer": "english"}})
    assert "Cannot update parameter [analyzer] from [default] to [english]" in conflict.body["error"]["reason"]


def test_mapping_errors_use_the_9x_messages(es):
    error = _error(es.indices.create, index="books", mappings={"properties": {"content": {"type": "invalid"}}})
    assert error.body["error"]["type"] == "mapper_parsing_exception"
    assert error.body["error"]["reason"] == (
        "Failed to parse mapping: The mapper type [invalid] declared on field [content] does not exist. It might "
        "have been created within a future version or requires a plugin to be installed. Check the documentation.")
    typo = _error(es.indices.create, index="books", mappings={"properties": {"title": {"type": "text",
                                                                                        "analyser": "english"}}})
    assert typo.body["error"]["reason"] == \
        "Failed to parse mapping: unknown parameter [analyser] on mapper [title] of type [text]"
    es.indices.create(index="books")
    status, body = _raw_put_mapping(es, "books", {"_doc": {"properties": {"f": {"type": "keyword"}}}})
    assert status == 400 and body["error"]["reason"] == "Types cannot be provided in put mapping requests"


def _raw_put_mapping(es, index: str, body: dict) -> tuple[int, dict]:
    try:
        response = es.perform_request("PUT", f"/{index}/_mapping", body=body,
                                      headers={"content-type": "application/json", "accept": "application/json"})
        return response.meta.status, response.body
    except ApiError as error:
        return error.meta.status, error.body


def test_dynamic_mapping_of_document_fields(es, sandbox):
    es.indices.create(index="books", mappings={"properties": {"title": {"type": "keyword"}}})
    index = sandbox.cluster.indices.get("books")
    changed = index.update_mapping_for({"title": "x", "summary": "text", "pages": 3, "rating": 4.5, "new": True,
                                        "published": "2024-05-01", "author": {"name": "Le Guin"}, "tags": []})
    assert changed is True
    props = es.indices.get_mapping(index="books")["books"]["mappings"]["properties"]
    assert props["title"] == {"type": "keyword"}
    assert props["summary"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["pages"] == {"type": "long"} and props["rating"] == {"type": "float"}
    assert props["new"] == {"type": "boolean"} and props["published"] == {"type": "date"}
    assert props["author"] == {"properties": {"name": props["summary"]}}
    assert "tags" not in props
    assert index.update_mapping_for({"pages": 4}) is False


def test_dynamic_templates_shape_new_fields(es, sandbox):
    es.indices.create(index="books", mappings={"dynamic_templates": [
        {"ids": {"match": "*_id", "mapping": {"type": "keyword"}}},
        {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 64}}}]})
    sandbox.cluster.indices.get("books").update_mapping_for({"author_id": 7, "title": "Dune", "pages": 412})
    props = es.indices.get_mapping(index="books")["books"]["mappings"]["properties"]
    assert props == {"author_id": {"type": "keyword"}, "pages": {"type": "long"},
                     "title": {"type": "keyword", "ignore_above": 64}}


def test_strict_dynamic_mapping_refuses_new_fields(es, sandbox):
    es.indices.create(index="books", mappings={"dynamic": "strict", "properties": {"title": {"type": "text"}}})
    index = sandbox.cluster.indices.get("books")
    with pytest.raises(Exception) as info:
        index.update_mapping_for({"title": "x", "extra": 1})
    assert getattr(info.value, "type", "") == "strict_dynamic_mapping_exception"
    assert "extra" not in index.mappings["properties"]


# ---- aliases ------------------------------------------------------------------------------------------------
def test_atomic_alias_swap_and_write_index(es, sandbox):
    es.indices.create(index="books-v1", aliases={"books": {}})
    es.indices.create(index="books-v2")
    swapped = es.indices.update_aliases(actions=[{"remove": {"index": "books-v1", "alias": "books"}},
                                                 {"add": {"index": "books-v2", "alias": "books"}}])
    assert swapped.body == {"acknowledged": True, "errors": False}
    assert set(es.indices.get_alias(name="books")) == {"books-v2"}
    store = sandbox.cluster.indices
    assert store.resolve_write_index("books").name == "books-v2"
    es.indices.put_alias(index="books-v1", name="books")
    with pytest.raises(ApiError):  # two indices, no write index
        es.index(index="books", document={"title": "x"})
    message = "no write index is defined for alias [books]"
    with pytest.raises(Exception, match=re.escape(message)):
        store.resolve_write_index("books")
    es.indices.put_alias(index="books-v2", name="books", is_write_index=True)
    assert store.resolve_write_index("books").name == "books-v2"
    assert [i.name for i in store.resolve("books")] == ["books-v1", "books-v2"]


def test_failed_must_exist_applies_nothing_and_partial_failures_are_reported(es):
    es.indices.create(index="books")
    error = _error(es.indices.update_aliases, actions=[
        {"add": {"index": "books", "alias": "a1"}},
        {"remove": {"index": "books", "alias": "missing", "must_exist": True}}])
    assert error.meta.status == 404 and error.body["error"]["type"] == "aliases_not_found_exception"
    assert not es.indices.exists_alias(name="a1")
    partial = es.indices.update_aliases(actions=[{"add": {"index": "books", "alias": "a1"}},
                                                 {"remove": {"index": "books", "alias": "missing"}}])
    assert partial["errors"] is True
    assert [r["status"] for r in partial["action_results"]] == [200, 404]
    assert es.indices.exists_alias(name="a1")


def test_alias_properties_and_9x_strict_types(es):
    es.indices.create(index="books", aliases={"r": {"routing": "b"}, "w": {"is_write_index": False}})
    aliases = es.indices.get_alias(index="books")["books"]["aliases"]
    assert aliases == {"r": {"index_routing": "b", "search_routing": "b"}, "w": {"is_write_index": False}}
    error = _error(es.indices.create, index="other", aliases={"x": {"is_write_index": "true"}})
    assert error.body["error"]["reason"] == \
        "Unsupported String type value [true] for field [is_write_index] in alias [x]"


def test_alias_filters_apply_only_when_the_index_is_reached_through_filtered_aliases(es, sandbox):
    term = {"term": {"genre": "scifi"}}
    es.indices.create(index="books", aliases={"scifi": {"filter": term}, "all-books": {}})
    store = sandbox.cluster.indices
    assert store.alias_filter("books", "scifi") == [term]
    assert store.alias_filter("books", "sci*") == [term]
    assert store.alias_filter("books", "scifi,books") is None
    assert store.alias_filter("books", "scifi,all-books") is None


def test_get_missing_alias_uses_the_string_error_shape(es):
    es.indices.create(index="books", aliases={"shelf": {}})
    with pytest.raises(NotFoundError) as info:
        es.indices.get_alias(index="books", name="shelf,gone,lost")
    assert info.value.body == {"error": "aliases [gone,lost] missing", "status": 404,
                               "books": {"aliases": {"shelf": {}}}}


# ---- templates and pipelines --------------------------------------------------------------------------------
def test_index_templates_apply_by_priority_on_creation(es, sandbox):
    es.indices.put_index_template(name="low", index_patterns=["logs-*"], priority=1,
                                  template={"settings": {"number_of_replicas": 0}})
    es.indices.put_index_template(name="high", index_patterns="logs-app-*", priority=5, template={
        "settings": {"index": {"refresh_interval": "30s"}},
        "mappings": {"properties": {"message": {"type": "text"}}}, "aliases": {"logs": {}}})
    got = es.indices.get_index_template(name="high")["index_templates"][0]["index_template"]
    assert got["index_patterns"] == ["logs-app-*"]
    assert got["template"]["settings"] == {"index": {"refresh_interval": "30s"}}
    es.indices.create(index="logs-app-1", settings={"number_of_shards": 2})
    settings = es.indices.get_settings(index="logs-app-1")["logs-app-1"]["settings"]["index"]
    assert settings["refresh_interval"] == "30s" and settings["number_of_shards"] == "2"
    assert settings["number_of_replicas"] == "1"  # the lower-priority template does not apply
    assert es.indices.get_mapping(index="logs-app-1")["logs-app-1"]["mappings"]["properties"] == {
        "message": {"type": "text"}}
    assert es.indices.exists_alias(name="logs")
    auto = sandbox.cluster.indices.resolve_write_index("logs-other")  # auto-created, low template applies
    assert auto.settings["index.number_of_replicas"] == "0"


def test_auto_creation_follows_cluster_setting_and_template(es, sandbox):
    es.indices.put_index_template(name="locked", index_patterns=["locked-*"], allow_auto_create=False)
    with pytest.raises(NotFoundError, match="forbids index auto creation"):
        es.index(index="locked-1", document={"a": 1})
    es.cluster.put_settings(persistent={"action.auto_create_index": False})
    with pytest.raises(NotFoundError, match=re.escape("[action.auto_create_index] is [false]")):
        es.index(index="anything", document={"a": 1})
    store = sandbox.cluster.indices
    assert store.get("anything") is None and store.get("locked-1") is None


def test_index_template_errors(es):
    es.indices.put_index_template(name="t1", index_patterns=["a-*"])
    overlap = _error(es.indices.put_index_template, name="t2", index_patterns=["a-b*"])
    assert overlap.meta.status == 400 and "have the same priority [0]" in overlap.body["error"]["reason"]
    assert _error(es.indices.put_index_template, name="t1", index_patterns=["z-*"], create=True).meta.status == 400
    missing = _error(es.indices.get_index_template, name="nope")
    assert missing.body["error"]["reason"] == "index template matching [nope] not found"
    with pytest.raises(NotFoundError) as info:
        es.indices.get_index_template(name="nope*")
    assert info.value.body == {"index_templates": []}


def test_pipelines_are_stored_and_validated(es, sandbox):
    es.ingest.put_pipeline(id="p1", description="d", processors=[
        {"inference": {"model_id": "my-model", "target_field": "ml"}}])
    assert es.ingest.get_pipeline(id="p1")["p1"]["description"] == "d"
    assert "my-model" in json.dumps(sandbox.cluster.indices.pipelines["p1"])
    assert es.ingest.get_pipeline(summary=True).body == {"p1": {}}
    nested = _error(es.ingest.put_pipeline, id="p2", processors=[{"set": {}, "date": {}}])
    assert nested.body["error"]["reason"] == \
        "[processors] contains nested objects but should be a list of single-entry objects"
    status, body = _raw(sandbox.url + "/_ingest/pipeline/gone")
    assert (status, body) == (404, {})
    es.ingest.delete_pipeline(id="p1")
    with pytest.raises(NotFoundError):
        es.ingest.delete_pipeline(id="p1")


# ---- cluster level and persistence ---------------------------------------------------------------------------
def test_health_and_capabilities(es, sandbox):
    assert es.cluster.health(wait_for_status="green")["status"] == "green"
    status, body = _raw(sandbox.url + "/_capabilities?method=PUT&path=/%7Bindex%7D&capabilities=lookup_index_mode")
    assert (status, body) == (200, {"supported": True})
    _, unknown = _raw(sandbox.url + "/_capabilities?method=PUT&path=/%7Bindex%7D&capabilities=made_up")
    assert unknown == {"supported": False}
    with pytest.raises(BadRequestError):
        es.indices.create(index="lookup", settings={"index.mode": "lookup", "number_of_shards": 2})


def test_dump_and_load_round_trip(es, sandbox):
    es.indices.create(index="books", aliases={"shelf": {"is_write_index": True}},
                      mappings={"properties": {"title": {"type": "text"}}})
    es.index(index="books", id="1", document={"title": "Dune"}, refresh=True)
    es.indices.put_index_template(name="t", index_patterns=["x-*"])
    es.ingest.put_pipeline(id="p", processors=[])
    dumped = json.loads(json.dumps(sandbox.cluster.indices.dump()))
    copy = IndexStore(sandbox.cluster)
    copy.load(dumped)
    assert copy.get("books").docs["1"].source == {"title": "Dune"}
    assert copy.get("books").mappings == sandbox.cluster.indices.get("books").mappings
    assert copy.aliases == {"shelf": {"books": {"is_write_index": True}}}
    assert set(copy.templates) == {"t"} and set(copy.pipelines) == {"p"}


def test_state_file_keeps_indices_across_restarts(tmp_path):
    from elasticsearch import Elasticsearch

    from sandbox.server import Sandbox

    state = tmp_path / "state.json"
    first = Sandbox(state_file=state).start()
    try:
        client = Elasticsearch(first.url)
        client.indices.create(index="books", aliases={"shelf": {}}, settings={"number_of_replicas": 0})
        client.index(index="books", id="1", document={"title": "Dune"}, refresh=True)
    finally:
        first.stop()
    second = Sandbox(state_file=state).start()
    try:
        client = Elasticsearch(second.url)
        assert client.get(index="shelf", id="1")["_source"] == {"title": "Dune"}
        assert client.search(index="shelf", query={"match": {"title": "dune"}})["hits"]["total"]["value"] == 1
        settings = client.indices.get_settings(index="books")["books"]["settings"]["index"]
        assert settings["number_of_replicas"] == "0"
    finally:
        second.stop()
