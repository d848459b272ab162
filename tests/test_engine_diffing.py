"""Normalisation so unchanged manifests plan nothing, and the diff classification of index changes."""

from __future__ import annotations

from provisioning.diffing import declared_diffs, flat_settings, redact, spec_hash
from provisioning.kinds.index_rules import alias_diffs, mapping_diffs, settings_diffs


def test_settings_in_any_form_normalise_to_flat_prefixed_strings():
    nested = {"index": {"number_of_shards": 1, "hidden": True}}
    assert flat_settings(nested) == flat_settings({"index.number_of_shards": "1", "hidden": "true"}) == {
        "index.number_of_shards": "1", "index.hidden": "true"}


def test_only_declared_keys_are_compared():
    live = {"index.number_of_shards": "1", "index.uuid": "abc", "index.creation_date": "1"}
    assert settings_diffs({"number_of_shards": 1}, live, None) == []


def test_es_added_mapping_details_are_not_drift():
    declared = {"properties": {"body": {"type": "semantic_text", "inference_id": "e5"},
                               "meta": {"properties": {"a": {"type": "keyword"}}}},
                "dynamic_templates": [{"strings": {"match": ["*_s"], "mapping": {"type": "keyword"}}}]}
    live = {"_meta": {"managed_by": "es-stack"},
            "properties": {"body": {"type": "semantic_text", "inference_id": "e5",
                                    "model_settings": {"task_type": "sparse_embedding"}},
                           "meta": {"type": "object", "properties": {"a": {"type": "keyword"}}},
                           "added_by_documents": {"type": "text"}},
            "dynamic_templates": [{"strings": {"match": "*_s", "mapping": {"type": "keyword"}}}]}
    assert mapping_diffs(declared, live, declared) == []


def test_new_field_is_an_update_and_a_type_change_a_replacement():
    live = {"properties": {"title": {"type": "text"}}}
    added = mapping_diffs({"properties": {"title": {"type": "text"}, "year": {"type": "short"}}}, live, None)
    assert [(d.path, d.forces_replacement) for d in added] == [("mappings.properties.year", False)]
    changed = mapping_diffs({"properties": {"title": {"type": "keyword"}}}, live, None)
    assert [(d.path, d.forces_replacement) for d in changed] == [("mappings.properties.title.type", True)]
    ignore_above = mapping_diffs({"properties": {"title": {"type": "text", "fields": {
        "raw": {"type": "keyword", "ignore_above": 100}}}}},
        {"properties": {"title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}}}},
        None)
    assert [(d.path, d.forces_replacement) for d in ignore_above] == [
        ("mappings.properties.title.fields.raw.ignore_above", False)]


def test_a_field_someone_else_added_is_not_removed_but_one_we_dropped_is():
    live = {"properties": {"a": {"type": "text"}, "b": {"type": "text"}, "c": {"type": "text"}}}
    previous = {"properties": {"a": {"type": "text"}, "b": {"type": "text"}}}
    diffs = mapping_diffs({"properties": {"a": {"type": "text"}}}, live, previous)
    assert [(d.path, d.after, d.forces_replacement) for d in diffs] == [("mappings.properties.b", None, True)]


def test_alias_routing_echo_is_not_drift_and_dropped_aliases_are_removed():
    live = {"movies": {}, "r": {"index_routing": "1", "search_routing": "1"}, "theirs": {}, "old": {}}
    diffs = alias_diffs("movies", {"r": {"routing": "1"}}, live, {"r": {}, "old": {}})
    assert [(d.path, d.after) for d in diffs] == [("aliases.old", None)]


def test_scalars_compare_as_es_renders_them():
    assert declared_diffs({"a": True, "b": 2}, {"a": "true", "b": "2"}) == []
    assert [d.path for d in declared_diffs({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}})] == ["a.b"]


def test_hashes_are_deterministic_and_redaction_masks_secrets():
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert redact({"service_settings": {"api_key": "sk", "model_id": "m"}, "token_env": "HF_TOKEN"}) == {
        "service_settings": {"api_key": "(sensitive value)", "model_id": "m"}, "token_env": "HF_TOKEN"}


def test_a_default_we_applied_and_es_does_not_echo_is_not_drift():
    declared = {"dynamic": True, "properties": {"tag": {"type": "keyword", "index": True, "doc_values": True}}}
    live = {"properties": {"tag": {"type": "keyword"}}}  # GET _mapping omits parameters left at their default
    assert mapping_diffs(declared, live, declared) == []
    # not applied by us before: a real difference (e.g. a parameter added to the manifest since)
    assert [d.path for d in mapping_diffs(declared, live, None)] == [
        "mappings.dynamic", "mappings.properties.tag.doc_values", "mappings.properties.tag.index"]
