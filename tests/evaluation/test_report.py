"""The evaluation's outputs on a constructed result: the table, deltas, per-query differences with the ranks of the
relevant documents, JUnit failures when gates are enforced, Markdown sections."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from provisioning.evaluation import report
from provisioning.evaluation.run import EvaluationResult, Gate


def result(enforced=True) -> EvaluationResult:
    per_query = {"lexical": {"q1": {"ndcg@10": 0.5}, "q2": {"ndcg@10": 1.0}, "q3": {"ndcg@10": 0.2}},
                 "reranked": {"q1": {"ndcg@10": 1.0}, "q2": {"ndcg@10": 0.25}, "q3": {"ndcg@10": 0.2}}}
    ranks = {"lexical": {"q1": [{"doc": "a", "grade": 3, "rank": 2}], "q2": [{"doc": "b", "grade": 2, "rank": 1}],
                         "q3": []},
             "reranked": {"q1": [{"doc": "a", "grade": 3, "rank": 1}], "q2": [{"doc": "b", "grade": 2, "rank": None}],
                          "q3": []}}
    return EvaluationResult("rel", "movies", "msearch", {"q1": "one", "q2": "two", "q3": "three"}, ["ndcg@10"],
                            {"lexical": {"ndcg@10": 0.5667}, "reranked": {"ndcg@10": 0.4833}}, per_query, ranks,
                            [Gate("reranked ndcg@10 >= lexical ndcg@10 + 0.05", False, 0.4833, 0.6167),
                             Gate("lexical ndcg@10 >= 0.5", True, 0.5667, 0.5)],
                            enforced=enforced, off_reason="" if enforced else "a random model")


def test_text_shows_deltas_gates_and_per_query_ranks():
    text = report.render_text([result()])
    assert "evaluation/rel: FAILED (3 queries on movies, computed with msearch)" in text
    assert "0.5667" in text and "-0.0834" in text  # delta reranked - lexical
    assert "FAIL reranked ndcg@10 >= lexical ndcg@10 + 0.05 (got 0.4833, needs 0.6167)" in text
    assert "1 better, 1 worse, 1 unchanged" in text
    assert "worse  q2 'two': 1.0000 -> 0.2500" in text and "reranked: b(2)@-" in text
    assert "better q1 'one': 0.5000 -> 1.0000" in text and "lexical: a(3)@2" in text


def test_junit_counts_failures_only_when_enforced():
    suites = ET.fromstring(report.to_junit([result()]))
    suite = suites.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    assert suite.findall("testcase")[0].find("failure").get("message") == "got 0.4833, needs 0.6167"
    off = ET.fromstring(report.to_junit([result(enforced=False)])).find("testsuite")
    assert (off.get("failures"), off.get("skipped")) == ("0", "2")


def test_json_and_markdown():
    document = json.loads(report.to_json([result()]))
    assert document["ok"] is False
    assert [d["query"] for d in document["evaluations"][0]["differences"]["reranked"]] == ["q2", "q1"]
    markdown = report.to_markdown([result(enforced=False)])
    assert "## evaluation/rel: reported (gates off)" in markdown and "> Gates are off: a random model" in markdown
    assert "| q2 | two | 1.0000 | 0.2500 | worse | b(2)@1 | b(2)@- |" in markdown
