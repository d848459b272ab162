"""Plan output: symbols, field diffs, summary line, masking, stable JSON."""

from __future__ import annotations

import json

from provisioning import render_plan
from provisioning.model import Change, FieldDiff, Hazard, Request, Resource, SourceLocation, Step
from provisioning.planner import StackPlan
from provisioning.report import plan_to_dict, summary_line

SECRET = "sk-live-1234567890"


def sample_plan():
    res = lambda kind, name: Resource(kind, name, {}, SourceLocation("manifests/a.yaml", 3))  # noqa: E731
    return StackPlan(stack="prod", changes=[
        Change("index", "movies", "create", resource=res("index", "movies"), reason="new physical index"),
        Change("index", "shows", "update", [FieldDiff("settings.index.number_of_replicas", "0", "1")],
               resource=res("index", "shows")),
        Change("index", "books", "replace", [FieldDiff("settings.index.number_of_shards", "1", "2",
                                                       forces_replacement=True)], resource=res("index", "books"),
               operations=[Request("PUT", "/books-000002", body={"settings": {"index.number_of_shards": "2"}})]),
        Change("inference_endpoint", "llm", "update",
               [FieldDiff("secrets.api_key", "hmac:old", SECRET, sensitive=True),
                FieldDiff("service_settings", {"api_key": SECRET}, {"api_key": SECRET, "model": "x"})],
               resource=res("inference_endpoint", "llm")),
        Change("documents", "old-seed", "delete", reason="no longer declared in the manifests",
               hazards=[Hazard("data_loss", "removes 2 documents from movies: a, b")],
               operations=[Step("bulk_delete", {"index": "movies", "ids": ["a", "b"]}, ("POST /_bulk",),
                                "bulk delete 2 documents from movies: a, b")]),
        Change("index", "same", "noop", resource=res("index", "same")),
    ], resources=[res("check", "top-hit")])


def test_plain_text_has_one_line_per_change_with_symbols_and_a_summary():
    text = render_plan(sample_plan(), color=False)
    lines = text.splitlines()
    assert any(line.strip().startswith("+ index/movies") for line in lines)
    assert any(line.strip().startswith("~ index/shows") for line in lines)
    assert any(line.strip().startswith("-/+ index/books") for line in lines)
    assert any(line.strip().startswith("! - documents/old-seed") for line in lines)  # `!`: loses data
    assert "Destructive changes:" in text and "! documents/old-seed: removes 2 documents from movies: a, b" in text
    assert any(line.strip().startswith("? check/top-hit") for line in lines)
    assert "index/same" not in text
    assert '~ settings.index.number_of_replicas: "0" -> "1"' in text
    assert "# forces replacement" in text
    assert lines[-1] == ("Plan: 1 to create, 2 to update, 1 to replace, 1 to delete. "
                         "1 losing data, 0 interrupting service.")
    assert "\x1b[" not in text
    assert "PUT /books-000002" not in text


def test_show_requests_prints_each_changes_operations():
    text = render_plan(sample_plan(), color=False, show_requests=True)
    assert '> PUT /books-000002\n' in text and '{"settings": {"index.number_of_shards": "2"}}' in text
    assert "> [bulk_delete] bulk delete 2 documents from movies: a, b" in text


def test_colour_only_when_asked():
    assert "\x1b[" in render_plan(sample_plan(), color=True)


def test_sensitive_values_never_appear():
    plan = sample_plan()
    assert SECRET not in render_plan(plan, color=False)
    assert SECRET not in json.dumps(plan_to_dict(plan))
    assert "(sensitive value)" in render_plan(plan, color=False)


def test_json_is_stable_for_machines():
    data = plan_to_dict(sample_plan())
    assert list(data) == ["format_version", "stack", "destroy", "has_changes", "summary", "hazards", "warnings",
                          "changes", "checks"]
    assert data["format_version"] == 2
    assert data["summary"] == {"create": 1, "update": 2, "replace": 1, "delete": 1, "noop": 1}
    assert data["hazards"] == [{"key": "documents/old-seed", "kind": "data_loss",
                                "message": "removes 2 documents from movies: a, b"}]
    assert data["checks"] == [{"key": "check/top-hit", "location": "manifests/a.yaml:3", "run": "after_apply"}]
    books = [c for c in data["changes"] if c["key"] == "index/books"][0]
    assert books == {"key": "index/books", "kind": "index", "name": "books", "action": "replace",
                     "reason": "", "location": "manifests/a.yaml:3", "desired": {},
                     "diffs": [{"path": "settings.index.number_of_shards", "before": "1", "after": "2",
                                "sensitive": False, "forces_replacement": True}],
                     "hazards": [],
                     "operations": [{"op": "request", "method": "PUT", "path": "/books-000002", "query": {},
                                     "body": {"settings": {"index.number_of_shards": "2"}}, "ignore": []}]}


def test_empty_plan_says_no_changes():
    plan = StackPlan(changes=[])
    assert "No changes" in render_plan(plan, color=False)
    assert summary_line(plan) == "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."
