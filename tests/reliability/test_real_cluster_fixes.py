"""Issue 11: what a real cluster does that the first sandbox hid, each reproduced by the sandbox's pace knobs
(PUT /_sandbox/pace) and shown handled: the definition index refreshed only on the last part, deployments that
allocate slowly or only in part, writes during an index replacement, an interrupted reindex.
"""

from __future__ import annotations

import threading
import time

import pytest
from elasticsearch import ApiError

from provisioning import NotConverged, ProvisioningError
from provisioning.model_import import deployment as dep
from testbed.example_stack import ENDPOINT, INDEX, MODEL_ID, connect, movie_ids, stored_ids


@pytest.fixture
def client(ksb):
    c = connect(ksb.url)
    yield c
    c.close()


def pace(sandbox, **knobs):
    from sandbox.pace import Pace

    sandbox.cluster.pace = Pace(**{**sandbox.cluster.pace.to_dict(), **knobs})


def test_the_last_definition_part_goes_after_every_other_is_acknowledged(stack, ksb, client):
    # ES refreshes the definition index only when it stores the last part; a part stored after it stays invisible
    # until the next refresh (here: a minute), so a client that sent the last part early would fail its check
    pace(ksb, ml_refresh_seconds=60)
    stack.apply(client, upload_workers=4)
    parts = [e for e in ksb.log.entries() if e["method"] == "PUT" and "/definition/" in e["path"]]
    assert len(parts) > 2, "the tiny model must have several parts"
    last = max(parts, key=lambda e: int(e["path"].rsplit("/", 1)[1]))
    started = last["time"] - last["duration_ms"] / 1000
    assert all(e["time"] <= started for e in parts if e is not last)  # acknowledged before the last one left
    status = client.ml.get_trained_models(model_id=MODEL_ID, include="definition_status").body
    assert status["trained_model_configs"][0]["fully_defined"] is True


def test_a_deployment_that_allocates_in_part_is_reported_while_waiting_and_handled_per_wait_for(
        stack, ksb, client, monkeypatch):
    monkeypatch.setattr(dep, "PROGRESS_EVERY", 0.3)
    pace(ksb, max_allocations=1, allocation_seconds=0.5)  # the "cluster" holds one allocation, slowly
    stack.extra_vars = {"RERANK_NUM_ALLOCATIONS": "2"}
    with pytest.raises(ProvisioningError) as waited:
        stack.apply(client, wait_timeout=3)  # fully_allocated (the default) never comes
    assert isinstance(waited.value.__cause__ or waited.value, NotConverged) or "not fully allocated" in \
        str(waited.value)
    message = str(waited.value)
    assert "last seen: state started, allocation started 1/2" in message and "--wait-for started" in message
    progress = [m for m in stack.last_context.reporter.messages if "waiting for deployment" in m]
    assert len(progress) >= 3 and "1/2" in progress[-1]
    # the same apply accepting a deployment that serves with fewer allocations than its target
    result = stack.apply(client, wait_for="started")
    assert not result.checks_failed
    assert not stack.plan(client).has_changes


def test_a_write_during_an_index_replacement_ends_in_the_new_index(stack, ksb, client):
    stack.apply(client)
    pace(ksb, reindex_docs_per_second=20)  # about a second and a half to copy the 25 films
    written, stop = [], threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            try:
                client.index(index=INDEX, id=f"late-{n}", document={"id": f"late-{n}", "title": "written late"})
                written.append(f"late-{n}")
                n += 1
            except ApiError as exc:  # the old index is write-blocked while it is copied: a client retries later
                assert "blocked" in str(exc.info), exc.info
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        stack.extra_vars = {"MOVIES_SHARDS": "2"}
        stack.apply(client, wait_timeout=60)
    finally:
        stop.set()
        thread.join()
    assert list(client.indices.get_alias(name=INDEX).body) == ["movies-000002"]
    assert written, "no write was acknowledged"
    ids = set(stored_ids(client))
    assert movie_ids() <= ids and set(written) <= ids  # every acknowledged write is in the new index


def test_an_interrupted_reindex_leaves_the_alias_on_the_old_index_and_no_block(stack, ksb, client):
    stack.apply(client)
    pace(ksb, reindex_docs_per_second=1)
    stack.extra_vars = {"MOVIES_SHARDS": "2"}
    with pytest.raises(ProvisioningError, match="did not finish within the wait timeout"):
        stack.apply(client, wait_timeout=2)
    assert list(client.indices.get_alias(name=INDEX).body) == ["movies-000001"]
    settings = client.indices.get_settings(index="movies-000001", flat_settings=True).body["movies-000001"]
    assert settings["settings"].get("index.blocks.write") in (None, "false")
    assert not client.indices.exists(index="movies-000002")  # cancelled, then deleted
    running = client.tasks.list(actions="*reindex", group_by="none").body.get("tasks") or []
    assert all(task.get("cancelled") for task in running)  # cancelled (ES lists a task until it has stopped)
    client.index(index=INDEX, id="after", document={"id": "after", "title": "writes work again"}, refresh=True)
    assert ENDPOINT  # the stack's endpoint was untouched by the index change


def test_the_plan_warns_before_any_write_when_the_licence_does_not_allow_a_feature(stack, ksb, client):
    from provisioning import render_plan

    ksb.cluster.license_type = "basic"  # what a fresh self-managed cluster has
    seq = ksb.log.last_seq
    plan = stack.plan(client)
    warnings = plan.warnings
    assert any("third-party trained model needs an enterprise or platinum licence" in w for w in warnings), warnings
    assert any("text_similarity_reranker retriever needs an enterprise licence" in w for w in warnings), warnings
    assert "warning: the text_similarity_reranker retriever" in render_plan(plan)
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []
    ksb.cluster.license_type = "platinum"  # enough for the model, not for the reranker
    assert [w.split(" needs")[0] for w in stack.plan(client).warnings] == ["the text_similarity_reranker retriever"]
