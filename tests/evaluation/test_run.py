"""Evaluations against the sandbox: _rank_eval and _msearch give the same numbers, gates pass and fail as declared,
a relative gate and a baseline comparison catch a constructed regression, and the apply runs them after checks."""

from __future__ import annotations

import json

import pytest

from provisioning import converge
from provisioning.evaluation.run import compare_baseline, load_baseline, run_evaluation, run_evaluations, save_baseline
from provisioning.model import Resource, SourceLocation
from tests.engine_helpers import ctx_for, documents, index, write_docs

FILMS = [{"id": "d1", "text": "red apple", "hint": 4}, {"id": "d2", "text": "green apple", "hint": 3},
         {"id": "d3", "text": "red car", "hint": 2}, {"id": "d4", "text": "blue car", "hint": 1},
         {"id": "d5", "text": "yellow banana", "hint": 5}]
MAPPINGS = {"properties": {"id": {"type": "keyword"}, "text": {"type": "text"}, "hint": {"type": "integer"}}}
JUDGMENTS = [{"query_id": "apple", "doc_id": "d1", "grade": 3}, {"query_id": "apple", "doc_id": "d2", "grade": 1},
             {"query_id": "apple", "doc_id": "d3", "grade": 0},
             {"query_id": "car", "doc_id": "d3", "grade": 2}, {"query_id": "car", "doc_id": "d4", "grade": 2},
             {"query_id": "banana", "doc_id": "d5", "grade": 3}]
GOOD = {"query": {"match": {"text": "$query"}}}
# the same matches, ordered by a field that puts the best apple last: a constructed regression
WORSE = {"query": {"match": {"text": "$query"}}, "sort": [{"hint": "asc"}]}


def evaluation(name="fruit", variants=None, gates=None, **extra) -> Resource:
    spec = {"index": "films", "queries": {"apple": "red apple", "car": "car", "banana": "banana"},
            "judgments": {"inline": JUDGMENTS},
            "variants": variants or {"good": {"request": GOOD}, "worse": {"request": WORSE}},
            "metrics": ["ndcg@10", "mrr@10", "recall@2", "precision@2"], "gates": gates or [], **extra}
    return Resource("evaluation", name, spec, SourceLocation("manifests/evaluation.yaml", 1))


@pytest.fixture
def films(es, tmp_path):
    data = write_docs(tmp_path / "films.json", FILMS)
    converge([index("films", {"number_of_shards": 1}, MAPPINGS), documents("seed", "films", data)], ctx_for(es),
             command="pytest")
    return ctx_for(es)


def test_rank_eval_and_msearch_agree_and_match_hand_computed_values(films):
    via_rank_eval = run_evaluation(films, evaluation(method="rank_eval"))
    via_msearch = run_evaluation(films, evaluation(method="msearch"))
    assert via_rank_eval.method == "rank_eval" and via_msearch.method == "msearch"
    def flat(nested, prefix=""):
        out = {}
        for key, value in nested.items():
            out.update(flat(value, f"{prefix}{key}/") if isinstance(value, dict) else {prefix + key: value})
        return out

    assert flat(via_rank_eval.per_query) == pytest.approx(flat(via_msearch.per_query))
    assert flat(via_rank_eval.scores) == pytest.approx(flat(via_msearch.scores))
    assert via_rank_eval.ranks == via_msearch.ranks
    worse = via_msearch.per_query["worse"]
    # "red apple" sorted by hint: d3 (grade 0), d2 (grade 1), d1 (grade 3); the ideal cut to 3 hits: 3, 1, 0
    from math import log2
    assert worse["apple"]["ndcg@10"] == pytest.approx((1 / log2(3) + 7 / 2) / (7 + 1 / log2(3)))
    assert worse["apple"]["mrr@10"] == 0.5
    assert worse["apple"]["recall@2"] == 0.5 and worse["apple"]["precision@2"] == 0.5
    assert via_msearch.per_query["good"]["banana"] == {"ndcg@10": 1.0, "mrr@10": 1.0, "recall@2": 1.0,
                                                       "precision@2": 1.0}
    assert via_msearch.ranks["worse"]["apple"] == [{"doc": "d1", "grade": 3, "rank": 3},
                                                   {"doc": "d2", "grade": 1, "rank": 2}]


def test_auto_uses_rank_eval_through_the_alias(films, sandbox):
    seq = sandbox.log.last_seq
    result = run_evaluation(films, evaluation())
    assert result.method == "rank_eval" and not result.notes
    paths = [e["path"] for e in sandbox.log.entries(seq)]
    assert sum(p.endswith("/_rank_eval") for p in paths) == 8  # 2 variants x 4 metrics
    assert not any("_msearch" in p for p in paths)


def test_absolute_gates_pass_and_fail_as_declared(films):
    result = run_evaluation(films, evaluation(gates=[
        {"variant": "good", "metric": "ndcg@10", "at_least": 0.9},
        {"variant": "worse", "metric": "mrr@10", "at_least": 0.9}]))
    assert [(g.description, g.ok) for g in result.gates] == [
        ("good ndcg@10 >= 0.9", True), ("worse mrr@10 >= 0.9", False)]
    assert not result.ok
    off = run_evaluation(films, evaluation(gates=[{"variant": "worse", "metric": "mrr@10", "at_least": 0.9}],
                                           enforce_gates=False, gates_off_reason="a random model"))
    assert off.ok and off.gates_failed and off.off_reason == "a random model"


def test_relative_gate_fails_on_a_constructed_regression(films):
    gate = [{"variant": "worse", "metric": "ndcg@10", "at_least": {"variant": "good", "plus": 0.0}}]
    result = run_evaluation(films, evaluation(gates=gate))
    assert result.scores["worse"]["ndcg@10"] < result.scores["good"]["ndcg@10"]
    assert [(g.description, g.ok) for g in result.gates] == [("worse ndcg@10 >= good ndcg@10", False)]
    assert result.gates[0].required == pytest.approx(result.scores["good"]["ndcg@10"])
    # the other way round it passes, with a margin
    ok = run_evaluation(films, evaluation(gates=[
        {"variant": "good", "metric": "ndcg@10", "at_least": {"variant": "worse", "plus": 0.05}}]))
    assert ok.ok and ok.gates[0].description == "good ndcg@10 >= worse ndcg@10 + 0.05"


def test_baseline_comparison_fails_on_a_regression(films, tmp_path):
    accepted = run_evaluations(films, [evaluation()], manual=True)
    path = tmp_path / "baseline.json"
    save_baseline(accepted, path)
    assert json.loads(path.read_text())["evaluations"]["fruit"]["scores"]["good"]["ndcg@10"] > 0.9
    # the same run compares equal
    again = run_evaluations(films, [evaluation()], manual=True)
    compare_baseline(again, load_baseline(path))
    assert again[0].ok and len(again[0].baseline) == 8
    # a later change makes "good" behave like "worse": ndcg, mrr, recall and precision of good all drop
    regressed = run_evaluations(films, [evaluation(variants={"good": {"request": WORSE},
                                                             "worse": {"request": WORSE}})], manual=True)
    compare_baseline(regressed, load_baseline(path), tolerance=0.01)
    failed = [g.description for g in regressed[0].baseline if not g.ok]
    assert failed and all(d.startswith("good ") for d in failed)
    assert not regressed[0].ok
    # a tolerance larger than the drop accepts it
    lenient = run_evaluations(films, [evaluation(variants={"good": {"request": WORSE},
                                                           "worse": {"request": WORSE}})], manual=True)
    compare_baseline(lenient, load_baseline(path), tolerance=1.0)
    assert lenient[0].ok


def test_apply_runs_evaluations_only_after_apply_unless_manual(films):
    resources = [evaluation("after"), evaluation("later", run="manual")]
    assert [r.name for r in run_evaluations(films, resources)] == ["after"]
    assert [r.name for r in run_evaluations(films, resources, manual=True)] == ["after", "later"]
