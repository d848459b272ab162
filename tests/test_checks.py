"""Checks: post-apply assertions evaluated on real search responses; never a change in a plan."""

from __future__ import annotations

from provisioning import converge, make_plan, render_plan, run_checks
from provisioning.checks import evaluate
from tests.engine_helpers import MOVIE_MAPPINGS, check, ctx_for, documents, index, write_docs

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}
MOVIES = [{"id": "1", "title": "Heat", "plot": "a crime film about a heist"},
          {"id": "2", "title": "Alien", "plot": "a space horror"},
          {"id": "3", "title": "Fargo", "plot": "crime in the snow"}]


def stack(tmp_path, *checks):
    data = write_docs(tmp_path / "movies.json", MOVIES)
    return [index("movies", SETTINGS, MOVIE_MAPPINGS), documents("seed", "movies", data), *checks]


def response(titles, total=None):
    return {"hits": {"total": {"value": len(titles) if total is None else total, "relation": "eq"},
                     "hits": [{"_id": str(i), "_score": 1.0, "_source": {"title": t}} for i, t in enumerate(titles)]}}


def test_each_expectation_is_reported_with_what_was_found():
    results = evaluate({"total": 2, "min_hits": 3, "max_hits": 5, "top": {"field": "title", "equals": "Fargo"},
                        "contains": [{"field": "title", "equals": "Heat"}, {"field": "title", "equals": "Up"}]},
                       response(["Heat", "Fargo"]))
    assert [(r.description, r.ok) for r in results] == [
        ("total == 2", True), ("at least 3 hits", False), ("at most 5 hits", True),
        ("top hit title == 'Fargo'", False), ("some hit has title == 'Heat'", True),
        ("some hit has title == 'Up'", False)]
    assert results[3].detail == "got 'Heat'" and results[4].detail == "at rank 1"


def test_check_is_a_check_in_the_plan_never_a_change(es, tmp_path):
    resources = stack(tmp_path, check("crime", "movies", {"query": {"match": {"plot": "crime"}}}, {"total": 2}))
    plan = make_plan(resources, ctx_for(es))
    assert all(c.kind != "check" for c in plan.changes)
    assert "? check/crime  runs after apply" in render_plan(plan)


def test_checks_run_after_apply_and_report_failures(es, tmp_path):
    passing = check("crime", "movies", {"query": {"match": {"plot": "crime"}}},
                    {"total": 2, "contains": [{"field": "title", "equals": "Fargo"}]})
    failing = check("space", "movies", {"query": {"match": {"plot": "space"}}}, {"min_hits": 2})
    manual = check("manual", "movies", {"query": {"match_all": {}}}, {"total": 99}, run="manual")
    result = converge(stack(tmp_path, passing, failing, manual), ctx_for(es), command="pytest")
    assert {r.name: r.ok for r in result.checks} == {"crime": True, "space": False}
    assert result.checks_failed
    failed = [r for r in result.checks if r.name == "space"][0]
    assert failed.expectations[0].detail == "got 1"


def test_invoke_check_runs_manual_checks_too(es, tmp_path):
    manual = check("manual", "movies", {"query": {"match_all": {}}}, {"total": 3}, run="manual")
    resources = stack(tmp_path, manual)
    converge(resources, ctx_for(es), command="pytest")
    results = run_checks(ctx_for(es), resources, manual=True)
    assert [(r.name, r.ok, r.total) for r in results] == [("manual", True, 3)]


def test_a_check_without_total_tracking_reports_the_hits_its_expectations_counted(es, tmp_path):
    # track_total_hits: false makes ES omit hits.total: the expectations count the hits returned, and the result
    # (what `invoke check` prints) must show that same number, not 0
    untracked = check("untracked", "movies", {"query": {"match_all": {}}, "track_total_hits": False},
                      {"min_hits": 3}, run="manual")
    resources = stack(tmp_path, untracked)
    converge(resources, ctx_for(es), command="pytest")
    [result] = run_checks(ctx_for(es), resources, manual=True)
    assert result.ok and result.expectations[0].detail == "got 3"
    assert result.total == 3
