"""The sandbox's read-only preflight APIs, via the real client: indices.simulate_template and indices.validate_query.

Expected answers follow rest-api-spec/test/indices.simulate_template/10_basic.yml and
indices.validate_query/10_basic.yml (/work/shared/es-yaml-tests-next); refusals must be those of index creation.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from elasticsearch import ApiError

BAD_BODIES = [
    ({"mappings": {"properties": {"f": {"type": "txt"}}}}, "mapper_parsing_exception"),
    ({"mappings": {"properties": {"f": {"type": "text", "analyzer": "no_such_analyzer"}}}}, None),
    ({"settings": {"number_of_shards": 0}}, None),
    ({"settings": {"index": {"no_such_setting": 1}}}, None),
    ({"settings": {"analysis": {"analyzer": {"a": {"type": "custom", "tokenizer": "no_such_tokenizer"}}}}}, None),
]


def _writes(sandbox, seq):
    return [e for e in sandbox.log.entries(seq) if e["write"]]


def _refusal(call, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(**kwargs)
    return info.value


def _root_type(error: ApiError) -> str:
    return error.body["error"]["root_cause"][0]["type"]


def test_simulate_template_resolves_settings_mappings_aliases_and_overlaps(es, sandbox):
    es.indices.put_index_template(name="existing_test", index_patterns=["te*"], priority=10,
                                  template={"settings": {"number_of_shards": 1}})
    seq = sandbox.log.last_seq
    body = es.indices.simulate_template(index_patterns=["te*"], priority=15, template={
        "settings": {"index.blocks.write": True, "number_of_replicas": 0},
        "mappings": {"properties": {"field": {"type": "keyword"}}},
        "aliases": {"test_alias": {}}}).body
    assert body["template"]["settings"]["index"]["blocks"]["write"] == "true"
    assert body["template"]["settings"]["index"]["number_of_replicas"] == "0"
    assert body["template"]["mappings"]["properties"]["field"]["type"] == "keyword"
    assert list(body["template"]["aliases"]) == ["test_alias"]
    assert body["overlapping"] == [{"name": "existing_test", "index_patterns": ["te*"]}]
    assert _writes(sandbox, seq) == []
    assert list(es.indices.get_index_template().body["index_templates"]) and \
        [t["name"] for t in es.indices.get_index_template()["index_templates"]] == ["existing_test"]


def test_simulate_an_existing_template_by_name(es):
    es.indices.put_index_template(name="my-template", index_patterns=["other"], template={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"field": {"type": "keyword"}}}})
    body = es.indices.simulate_template(name="my-template").body
    assert body["template"]["settings"]["index"]["number_of_shards"] == "1"
    assert body["template"]["mappings"]["properties"]["field"]["type"] == "keyword"
    assert body["overlapping"] == []


@pytest.mark.parametrize(("body", "root_type"), BAD_BODIES)
def test_simulate_refuses_what_index_creation_refuses_and_writes_nothing(es, sandbox, body, root_type):
    create = _refusal(es.indices.create, index="probe", **body)
    seq = sandbox.log.last_seq
    simulate = _refusal(es.indices.simulate_template, index_patterns=["preflight-x"], priority=2**40, template=body)
    assert simulate.meta.status == 400
    assert _root_type(simulate) == _root_type(create)
    assert create.body["error"]["root_cause"][0]["reason"] == simulate.body["error"]["root_cause"][0]["reason"]
    if root_type:
        assert _root_type(simulate) == root_type
    assert _writes(sandbox, seq) == []
    assert not es.indices.exists(index="probe")


def test_simulate_refuses_a_same_priority_overlap_like_a_put(es):
    es.indices.put_index_template(name="a", index_patterns=["logs-*"], priority=5)
    error = _refusal(es.indices.simulate_template, index_patterns=["logs-x*"], priority=5)
    assert _root_type(error) == "illegal_argument_exception"
    assert "same priority" in error.body["error"]["reason"]


def test_validate_query_answers_as_the_yaml_test(es, sandbox):
    es.indices.create(index="testing", settings={"number_of_replicas": 0},
                      aliases={"alias_1": {"filter": {"match_all": {}}}})
    seq = sandbox.log.last_seq
    assert es.indices.validate_query(index="testing", q="query string")["valid"] is True
    assert es.indices.validate_query(index="alias_1", q="query string")["valid"] is True
    body = es.indices.validate_query(query={"invalid_query": {}}).body
    assert body["valid"] is False and "error" not in body
    body = es.indices.validate_query(explain=True, query={"invalid_query": {}}).body
    assert body["valid"] is False
    assert re.search(r".+unknown\squery\s\[invalid_query\].+", body["error"])
    body = es.indices.validate_query(explain=True, query={"boool": {}}).body
    assert re.search(r".+unknown\squery\s\[boool\]\sdid\syou\smean\s\[bool\]\?.+",
                                            body["error"])
    body = es.indices.validate_query(explain=True).body
    assert body["valid"] is True and body["_shards"]["failed"] == 0
    assert body["explanations"][0] == {"index": "testing", "valid": True, "explanation": "*:*"}
    body = es.perform_request("POST", "/_validate/query", params={"explain": "true"},
                              headers={"content-type": "application/json", "accept": "application/json"},
                              body={"match_all": {}}).body
    assert body == {"valid": False,
                    "error": "org.elasticsearch.common.ParsingException: request does not support [match_all]"}
    assert _writes(sandbox, seq) == []


def test_validate_query_checks_the_query_of_a_declared_check(es):
    es.indices.create(index="movies", mappings={"properties": {"plot": {"type": "text"}}})
    good = es.indices.validate_query(index="movies", explain=True,
                                     query={"multi_match": {"query": "crime", "fields": ["plot"]}})
    assert good["valid"] is True
    bad = es.indices.validate_query(index="movies", explain=True, query={"mach": {"plot": "crime"}})
    assert bad["valid"] is False and "unknown query [mach] did you mean [match]?" in bad["error"]


# ---- Elasticsearch's own YAML REST tests of these two APIs (es-yaml-tests-next, beside the checkout) ----------
NEXT = (Path(__file__).parents[3] / "shared" / "es-yaml-tests-next" / "rest-api-spec" / "src"
        / "yamlRestTest" / "resources" / "rest-api-spec" / "test")


@pytest.mark.parametrize(("folder", "name_filter"), [
    ("indices.validate_query", None),
    # the other simulate_template tests need component templates, legacy templates or data streams, which the
    # sandbox does not have
    ("indices.simulate_template", "Simulate template without a template in the body"),
])
def test_the_yaml_rest_tests_of_these_apis_pass(folder, name_filter):
    from conformance import runner

    if not (NEXT / folder).is_dir():
        pytest.skip(f"{NEXT / folder} is absent")
    summary = runner.run(NEXT / folder, name_filter=name_filter, out=io.StringIO())
    assert summary.count("passed") >= 1 and summary.count("failed") == 0, summary.line
