"""Version facts (provisioning/versions.py) and the sandbox's 8.19 differences (sandbox/versions.py), as data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisioning import versions
from provisioning.model import Request, SourceLocation
from sandbox import versions as sandbox_versions

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeChange:
    key: str
    operations: list
    action: str = "create"
    resource: object = None


@dataclass
class FakePlan:
    changes: list
    checks: list = field(default_factory=list)


def endpoint_put(**query) -> Request:
    return Request("PUT", "/_inference/rerank/r", query=query, body={"service": "elasticsearch",
                                                                     "service_settings": {"model_id": "m"}})


def test_every_fact_names_its_source_and_first_versions():
    for fact in versions.FACTS:
        assert fact.source and fact.since, fact.key
        assert all(v[0] == major for major, v in fact.since.items()), fact.key


@pytest.mark.parametrize("version,available", [("8.16.3", False), ("8.17.0", True), ("8.19.0", True),
                                               ("9.0.0", True), ("9.1.0", True)])
def test_inference_update_needs_8_17(version, available):
    change = FakeChange("inference_endpoint/r", [Request("PUT", "/_inference/rerank/r/_update", body={})],
                        action="update")
    refusals, _ = versions.check_plan(FakePlan([change]), version)
    assert (refusals == []) is available
    if not available:
        assert "needs Elasticsearch 8.17.0 or later" in refusals[0]
        assert "UpdateInferenceRequest.ts" in refusals[0]


def test_the_inference_put_timeout_is_left_out_before_8_18_not_refused():
    change = FakeChange("inference_endpoint/r", [endpoint_put(timeout="600s")])
    refusals, notes = versions.check_plan(FakePlan([change]), "8.17.2")
    assert refusals == [] and change.operations[0].query == {} and "8.18.0" in notes[0]
    change = FakeChange("inference_endpoint/r", [endpoint_put(timeout="600s")])
    assert versions.check_plan(FakePlan([change]), "8.19.0") == ([], [])
    assert change.operations[0].query == {"timeout": "600s"}


def test_semantic_text_options_exist_on_8_19_and_9_1_but_not_9_0():
    body = {"mappings": {"properties": {"body": {"type": "semantic_text", "inference_id": "e",
                                                 "chunking_settings": {"strategy": "word", "max_chunk_size": 100,
                                                                       "overlap": 10}}}}}
    for version, ok in (("8.18.1", False), ("8.19.0", True), ("9.0.3", False), ("9.1.0", True)):
        change = FakeChange("index/docs", [Request("PUT", "/docs-000001", body=body)])
        refusals, _ = versions.check_plan(FakePlan([change]), version)
        assert (refusals == []) is ok, (version, refusals)
        if not ok:
            assert "needs Elasticsearch 8.19.0 or later on 8.x, 9.1.0 or later on 9.x" in refusals[0]


def test_a_cluster_older_than_8_15_is_refused():
    refusals, _ = versions.check_plan(FakePlan([]), "8.14.3")
    assert refusals and "needs 8.15.0 or later" in refusals[0]
    assert versions.check_plan(FakePlan([]), None) == ([], [])  # serverless / unknown: not judged


def test_a_check_using_chunk_rescorer_is_refused_before_9_2():
    @dataclass
    class Check:
        spec: dict
        key: str = "check/snippets"
        source: SourceLocation = SourceLocation("checks.yaml", 3)

    check = Check({"request": {"retriever": {"text_similarity_reranker": {"chunk_rescorer": {}}}}})
    refusals, _ = versions.check_plan(FakePlan([], [check]), "8.19.0")
    assert "check/snippets (checks.yaml:3)" in refusals[0] and "9.2.0" in refusals[0]


def test_eland_gets_the_clusters_version_and_older_clusters_are_refused():
    from provisioning.errors import ConfigError
    from provisioning.model_import.tracing import es_version

    assert es_version(None, {"version": {"number": "8.19.0"}}) == (8, 19, 0)
    assert es_version(None, {"version": {"number": "9.1.0"}}) == (9, 1, 0)
    with pytest.raises(ConfigError, match="8.15.0 or later"):
        es_version(None, {"version": {"number": "8.14.0"}})


def test_the_readme_table_lists_every_sandbox_difference():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### 8.19 and 9.x in the sandbox"):]
    for key in sandbox_versions.DIFFERENCES:
        assert re.search(rf"\|\s*`{key}`\s*\|", section), f"README table misses {key}"
