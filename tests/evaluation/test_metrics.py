"""The metrics against values computed by hand (the formulas are in provisioning/evaluation/metrics.py)."""

from __future__ import annotations

from math import log2

import pytest

from provisioning.evaluation.metrics import Metric, mean, ndcg, precision, recall, reciprocal_rank

GRADES = {"a": 3, "c": 2, "e": 1, "f": 0}  # grades 0-3; b and d are returned but never judged
RANKED = ["a", "b", "c", "d"]  # 4 hits


def test_ndcg_with_unrated_hits_and_k_larger_than_the_hits():
    # DCG = (2^3-1)/log2(2) + 0 (b unrated) + (2^2-1)/log2(4) + 0 = 7 + 1.5 = 8.5
    # ideal: grades 3,2,1,0 cut to the 4 hits returned: 7 + 3/log2(3) + 1/log2(4) + 0
    assert ndcg(RANKED, GRADES, 10) == pytest.approx(8.5 / (7 + 3 / log2(3) + 0.5))
    assert ndcg(RANKED, GRADES, 10) == pytest.approx(0.904949, abs=1e-6)


def test_ndcg_cut_at_k():
    # k=2: DCG = 7 + 0; ideal = 7 + 3/log2(3)
    assert ndcg(RANKED, GRADES, 2) == pytest.approx(7 / (7 + 3 / log2(3)))


def test_ndcg_ideal_is_cut_to_the_hits_returned_as_elasticsearch_does():
    # one hit, the best document: ideal DCG is that of ONE document, so 1.0 although another grade-3 doc exists
    assert ndcg(["a"], {"a": 3, "b": 3}, 10) == 1.0


def test_ndcg_ties_in_grade_do_not_matter():
    assert ndcg(["b", "a"], {"a": 2, "b": 2}, 10) == 1.0
    # a tie in score is ordered by the engine: the order given is the order scored
    assert ndcg(["x", "a"], {"a": 2, "x": 1}, 10) == pytest.approx((1 + 3 / log2(3)) / (3 + 1 / log2(3)))


def test_no_relevant_judgment_and_no_hits_score_zero():
    for scorer in (ndcg, reciprocal_rank, recall, precision):
        assert scorer(RANKED, {"a": 0, "b": 0}, 10) == 0.0
        assert scorer([], GRADES, 10) == 0.0


def test_reciprocal_rank():
    assert reciprocal_rank(RANKED, GRADES, 10) == 1.0
    assert reciprocal_rank(["b", "f", "c"], GRADES, 10) == pytest.approx(1 / 3)  # f has grade 0: not relevant
    assert reciprocal_rank(["b", "f", "c"], GRADES, 2) == 0.0  # the first relevant is beyond k


def test_recall():
    # relevant judged: a, c, e (f has grade 0) -> 3
    assert recall(RANKED, GRADES, 10) == pytest.approx(2 / 3)
    assert recall(RANKED, GRADES, 2) == pytest.approx(1 / 3)
    assert recall(["a"], {"a": 3, "b": 3}, 10) == 0.5


def test_precision_divides_by_the_hits_returned_up_to_k():
    assert precision(RANKED, GRADES, 10) == 0.5  # 2 relevant of 4 hits (not of 10)
    assert precision(RANKED, GRADES, 1) == 1.0
    assert precision(RANKED, GRADES, 3) == pytest.approx(2 / 3)


def test_metric_labels_and_mean():
    metric = Metric.parse("ndcg@10")
    assert (metric.name, metric.k, metric.label) == ("ndcg", 10, "ndcg@10")
    assert metric.rank_eval_body() == {"dcg": {"normalize": True, "k": 10}}
    assert Metric.parse("mrr@5").score(["b", "a"], GRADES) == 0.5
    with pytest.raises(ValueError):
        Metric.parse("map@10")
    assert mean([1.0, 0.0, 0.5]) == 0.5
    assert mean([]) == 0.0
