"""Plan output: symbols, field diffs, summary line, masking, stable JSON."""

from __future__ import annotations

import json

from provisioning import render_plan
from provisioning.model import Change, FieldDiff, Resource, SourceLocation
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
                                                       forces_replacement=True)], resource=res("index", "books")),
        Change("inference_endpoint", "llm", "update",
               [FieldDiff("secrets.api_key", "hmac:old", SECRET, sensitive=True),
                FieldDiff("service_settings", {"api_key": SECRET}, {"api_key": SECRET, "model": "x"})],
               resource=res("inference_endpoint", "llm")),
        Change("documents", "old-seed", "delete", reason="no longer declared in the manifests"),
        Change("check", "top-hit", "noop", resource=res("check", "top-hit"), reason="check: runs after apply"),
        Change("index", "same", "noop", resource=res("index", "same")),
    ])


def test_plain_text_has_one_line_per_change_with_symbols_and_a_summary():
    text = render_plan(sample_plan(), color=False)
    lines = text.splitlines()
    assert any(line.strip().startswith("+ index/movies") for line in lines)
    assert any(line.strip().startswith("~ index/shows") for line in lines)
    assert any(line.strip().startswith("-/+ index/books") for line in lines)
    assert any(line.strip().startswith("- documents/old-seed") for line in lines)
    assert any(line.strip().startswith("? check/top-hit") for line in lines)
    assert "index/same" not in text
    assert '~ settings.index.number_of_replicas: "0" -> "1"' in text
    assert "# forces replacement" in text
    assert lines[-1] == "Plan: 1 to create, 2 to update, 1 to replace, 1 to delete."
    assert "\x1b[" not in text


def test_colour_only_when_asked():
    assert "\x1b[" in render_plan(sample_plan(), color=True)


def test_sensitive_values_never_appear():
    plan = sample_plan()
    assert SECRET not in render_plan(plan, color=False)
    assert SECRET not in json.dumps(plan_to_dict(plan))
    assert "(sensitive value)" in render_plan(plan, color=False)


def test_json_is_stable_for_machines():
    data = plan_to_dict(sample_plan())
    assert list(data) == ["format_version", "stack", "destroy", "has_changes", "summary", "changes"]
    assert data["summary"] == {"create": 1, "update": 2, "replace": 1, "delete": 1, "noop": 2}
    books = [c for c in data["changes"] if c["key"] == "index/books"][0]
    assert books == {"key": "index/books", "kind": "index", "name": "books", "action": "replace", "check": False,
                     "reason": "", "location": "manifests/a.yaml:3",
                     "diffs": [{"path": "settings.index.number_of_shards", "before": "1", "after": "2",
                                "sensitive": False, "forces_replacement": True}]}


def test_empty_plan_says_no_changes():
    plan = StackPlan(changes=[])
    assert "No changes" in render_plan(plan, color=False)
    assert summary_line(plan) == "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."
