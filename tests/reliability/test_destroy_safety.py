"""Destroy safety (issue 6, item 6): `invoke destroy` removes only what the stack created; a protected resource is
refused with a clear message and nothing is deleted; destroying a stack that is already gone succeeds and writes
nothing.

The example stack is applied through the engine (tiny model); destroy runs through the `destroy` task function
(tasks.py), with ELASTICSEARCH_URL pointing at the sandbox, as a pipeline runs it.
"""

from __future__ import annotations

import base64

import pytest
from invoke import Context, Exit

import tasks
from testbed.example_stack import (
    ENDPOINT,
    INDEX,
    LEDGER,
    MANIFESTS,
    MODEL_ID,
    STACK,
    connect,
    movie_ids,
    stack_state,
)

FOREIGN_INDEX, FOREIGN_MODEL, FOREIGN_ENDPOINT = "movies-archive", "someone-elses-cross-encoder", "someone-elses-rerank"


@pytest.fixture
def run_task(stack, monkeypatch, tmp_path):
    """Call a task of tasks.py the way `invoke <task> --yes` does, against the given sandbox."""
    monkeypatch.chdir(tmp_path)

    def run(task, sandbox, **kwargs):
        monkeypatch.setenv("ELASTICSEARCH_URL", sandbox.url)
        for name in ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ES_STACK_NAME"):
            monkeypatch.delenv(name, raising=False)
        variables = [f"RERANK_MODEL_PATH={stack.model_path}"] + kwargs.pop("var", [])
        return task(Context(), manifests=str(MANIFESTS), stack=STACK, var=variables, **kwargs)
    return run


def create_foreign_objects(es):
    """An index with documents, a trained model and an inference endpoint made by hand (another tool or person)."""
    from testbed.tiny_model import traced_tiny_cross_encoder

    es.indices.create(index=FOREIGN_INDEX, mappings={"properties": {"title": {"type": "text"}}})
    es.index(index=FOREIGN_INDEX, id="1", document={"title": "kept"}, refresh=True)
    traced = traced_tiny_cross_encoder()
    definition = traced.definition()
    es.ml.put_trained_model(model_id=FOREIGN_MODEL, body=traced.config)
    es.ml.put_trained_model_definition_part(model_id=FOREIGN_MODEL, part=0, definition=base64.b64encode(
        definition).decode(), total_definition_length=len(definition), total_parts=1)
    es.ml.put_trained_model_vocabulary(model_id=FOREIGN_MODEL, body=traced.vocabulary)
    # a third-party service: the sandbox stores it without calling out
    es.inference.put(task_type="rerank", inference_id=FOREIGN_ENDPOINT, inference_config={
        "service": "cohere", "service_settings": {"api_key": "not-a-real-key", "model_id": "rerank-english-v3.0"}})


def foreign_objects_intact(es):
    assert es.count(index=FOREIGN_INDEX)["count"] == 1
    model = es.ml.get_trained_models(model_id=FOREIGN_MODEL, include="definition_status")
    assert model["trained_model_configs"][0]["fully_defined"] is True
    assert [e["inference_id"] for e in es.inference.get(inference_id=FOREIGN_ENDPOINT)["endpoints"]] == [
        FOREIGN_ENDPOINT]


@pytest.mark.timeout(300)
def test_destroy_removes_the_stack_and_leaves_what_it_did_not_create(ksb, stack, run_task):
    es = connect(ksb.url)
    create_foreign_objects(es)
    stack.apply(es)
    assert stack_state(es)["endpoints"] == sorted([ENDPOINT, FOREIGN_ENDPOINT])

    with pytest.raises(Exit) as refused:  # documents in the index: refused without --allow-data-loss
        run_task(tasks.destroy, ksb, yes=True)
    assert refused.value.code == 1 and "allow-data-loss" in str(refused.value.message)
    assert es.count(index=INDEX)["count"] == len(movie_ids())

    run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True)
    state = stack_state(es)
    assert state["models"] == [FOREIGN_MODEL]
    assert state["endpoints"] == [FOREIGN_ENDPOINT]
    assert state["indices"] == ["ORPHAN", LEDGER]  # the foreign index (no alias) and the ledger index
    assert state["orphan_indices"] == [FOREIGN_INDEX]
    assert [d for d in state["deployments"] if d[0] == MODEL_ID] == []
    assert state["ledger"] == []  # no record and no lock of the stack left
    foreign_objects_intact(es)


def test_an_index_with_a_declared_name_that_the_tool_did_not_create_is_never_adopted_or_destroyed(sandbox, stack,
                                                                                                run_task):
    es = connect(sandbox.url)
    es.indices.create(index=INDEX, mappings={"properties": {"title": {"type": "text"}}})
    es.index(index=INDEX, id="mine", document={"title": "not the tool's"}, refresh=True)
    seq = sandbox.log.last_seq
    with pytest.raises(Exception) as caught:  # noqa: B017 - a plan-time refusal
        stack.apply(es)
    assert "not created by this stack" in str(caught.value) and f"index/{INDEX}" in str(caught.value)
    run_task(tasks.destroy, sandbox, yes=True, allow_data_loss=True)
    assert es.count(index=INDEX)["count"] == 1
    assert [e for e in sandbox.log.entries(seq) if e["write"]] == []


@pytest.mark.timeout(300)
def test_a_protected_resource_is_refused_with_a_clear_message_and_nothing_is_deleted(ksb, stack, run_task):
    es = connect(ksb.url)
    run_task(tasks.apply, ksb, yes=True, env="production")  # production protects the index (templates/settings.j2)
    before = stack_state(es)
    seq = ksb.log.last_seq
    with pytest.raises(Exit) as caught:
        run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True, env="production")
    message = str(caught.value.message)
    assert caught.value.code == 1
    assert f"index/{INDEX}" in message and "protected" in message, message
    assert "manifests/movies.yaml.j2" in message and "protected: false" in message, message  # where, what to do
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []  # refused before any change, the model included
    assert stack_state(es) == before


@pytest.mark.timeout(300)
def test_destroying_a_stack_that_is_already_gone_succeeds_and_writes_nothing(ksb, stack, run_task):
    es = connect(ksb.url)
    seq = ksb.log.last_seq
    run_task(tasks.destroy, ksb, yes=True)  # never applied: nothing to do
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []

    stack.apply(es)
    run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True)
    assert stack_state(es)["ledger"] == []
    seq = ksb.log.last_seq
    run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True)  # again
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []


def test_destroy_after_resources_vanished_by_hand_only_drops_the_ownership_records(ksb, stack, run_task):
    """Half gone (someone deleted the index and the endpoint by hand): destroy succeeds, deletes what remains of
    the stack, and its only other writes are to the ledger."""
    es = connect(ksb.url)
    stack.apply(es)
    es.inference.delete(inference_id=ENDPOINT, force=True)
    physical = next(iter(es.indices.get_alias(name=INDEX)))
    es.indices.delete(index=physical)
    seq = ksb.log.last_seq
    run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True)
    touched = {(e["method"], e["path"].split("/")[1]) for e in ksb.log.entries(seq) if e["write"]}
    assert touched <= {("DELETE", LEDGER), ("PUT", LEDGER), ("DELETE", "_ml"), ("POST", "_ml")}, touched
    assert stack_state(es)["ledger"] == [] and stack_state(es)["models"] == []


def test_an_index_the_stack_created_whose_record_was_lost_is_recorded_again_and_destroyed(ksb, stack, run_task):
    """A create that timed out yet succeeded, or a run killed right after it: the index carries the stack's marker
    but the ledger has no record. The next plan records it again, so destroy does not leave it behind."""
    es = connect(ksb.url)
    stack.apply(es)
    es.delete(index=LEDGER, id=f"{STACK}:index:{INDEX}", refresh=True)
    plan = stack.plan(es)
    assert [(c.key, c.action) for c in plan.changes if c.action != "noop"] == [(f"index/{INDEX}", "update")]
    stack.apply(es)
    assert f"{STACK}:index:{INDEX}" in stack_state(es)["ledger"]
    assert not stack.plan(es).has_changes
    run_task(tasks.destroy, ksb, yes=True, allow_data_loss=True)
    state = stack_state(es)
    assert state["indices"] in ([], [LEDGER]) and state["ledger"] == []
