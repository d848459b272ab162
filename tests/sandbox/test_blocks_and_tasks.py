"""Index blocks, reindex tasks and the pace knobs of the sandbox, through the real client."""

from __future__ import annotations

import time

import pytest
from elasticsearch import ApiError, NotFoundError


def error(call, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kwargs)
    return info.value


def test_add_block_answers_as_es_and_refuses_writes_until_removed(es):
    es.indices.create(index="movies")
    answer = es.indices.add_block(index="movies", block="write")
    assert answer.body == {"acknowledged": True, "shards_acknowledged": True,
                           "indices": [{"name": "movies", "blocked": True}]}
    assert es.indices.get_settings(index="movies")["movies"]["settings"]["index"]["blocks"]["write"] == "true"
    exc = error(es.index, index="movies", document={"a": 1})
    assert exc.meta.status == 403
    assert exc.body["error"]["type"] == "cluster_block_exception"
    assert exc.body["error"]["reason"] == "index [movies] blocked by: [FORBIDDEN/8/index write (api)];"
    es.search(index="movies")  # a write block leaves reads alone
    assert es.indices.remove_block(index="movies", block="write").body == {
        "acknowledged": True, "indices": [{"name": "movies", "unblocked": True}]}
    es.index(index="movies", document={"a": 1})


def test_a_read_block_refuses_searches(es):
    es.indices.create(index="movies")
    es.indices.add_block(index="movies", block="read")
    exc = error(es.search, index="movies")
    assert (exc.meta.status, exc.body["error"]["type"]) == (403, "cluster_block_exception")
    assert exc.body["error"]["reason"] == "index [movies] blocked by: [FORBIDDEN/7/index read (api)];"


def test_add_block_refuses_an_unknown_block_and_a_missing_index(es):
    es.indices.create(index="movies")
    exc = error(es.indices.add_block, index="movies", block="everything")
    assert (exc.meta.status, exc.body["error"]["reason"]) == (400, "No block found with name everything")
    assert error(es.indices.add_block, index="absent", block="write").meta.status == 404


def seed(es, count: int) -> None:
    es.indices.create(index="src")
    for i in range(count):
        es.index(index="src", id=str(i), document={"n": i})
    es.indices.refresh(index="src")


def test_reindex_task_completes_with_a_task_result(es):
    seed(es, 3)
    started = es.reindex(source={"index": "src"}, dest={"index": "dst"}, wait_for_completion=False)
    assert set(started.body) == {"task"}
    node, _, number = started["task"].partition(":")
    assert node and number.isdigit()
    result = es.tasks.get(task_id=started["task"], wait_for_completion=True)
    assert result["completed"] is True
    assert result["task"]["action"] == "indices:data/write/reindex"
    assert result["task"]["description"] == "reindex from [src] to [dst]"
    assert result["task"]["status"]["total"] == 3 and result["task"]["status"]["created"] == 3
    assert result["response"]["created"] == 3 and result["response"]["failures"] == []
    es.indices.refresh(index="dst")
    assert es.count(index="dst")["count"] == 3


def test_a_slow_reindex_task_shows_progress_and_can_be_cancelled(es, sandbox):
    seed(es, 40)
    es.perform_request("PUT", "/_sandbox/pace", body={"reindex_docs_per_second": 20},
                       headers={"accept": "application/json", "content-type": "application/json"})
    task_id = es.reindex(source={"index": "src"}, dest={"index": "dst"}, wait_for_completion=False)["task"]
    time.sleep(0.5)
    running = es.tasks.get(task_id=task_id)
    assert running["completed"] is False and "response" not in running
    assert 0 < running["task"]["status"]["created"] < 40
    listed = es.tasks.list(actions="*reindex", detailed=True)
    tasks = next(iter(listed["nodes"].values()))["tasks"]
    assert list(tasks) == [task_id] and tasks[task_id]["description"] == "reindex from [src] to [dst]"
    cancelled = es.tasks.cancel(task_id=task_id)
    assert next(iter(cancelled["nodes"].values()))["tasks"][task_id]["cancelled"] is True
    done = es.tasks.get(task_id=task_id, wait_for_completion=True, timeout="10s")
    # a cancelled reindex finishes with a response carrying the reason, not with an error
    assert done["completed"] is True and "error" not in done
    assert done["response"]["canceled"] == "by user request"
    assert done["response"]["created"] == done["task"]["status"]["created"] < 40
    assert es.tasks.list(actions="*reindex")["nodes"] == {}  # a finished task is no longer listed


def test_unknown_tasks_answer_as_es(es, sandbox):
    exc = error(es.tasks.get, task_id="foo:1")
    assert exc.meta.status == 404
    assert exc.body["error"]["reason"] == ("task [foo:1] belongs to the node [foo] which isn't part of the cluster "
                                           "and there is no record of the task")
    with pytest.raises(NotFoundError):
        es.tasks.get(task_id=f"{sandbox.cluster.node_id}:999")
    assert error(es.tasks.get, task_id="nonsense").meta.status == 400


def test_pace_hook_validates_and_resets(es, sandbox):
    headers = {"accept": "application/json", "content-type": "application/json"}
    with pytest.raises(ApiError):
        es.perform_request("PUT", "/_sandbox/pace", body={"no_such_knob": 1}, headers=headers)
    es.perform_request("PUT", "/_sandbox/pace", body={"max_allocations": 1}, headers=headers)
    assert es.perform_request("GET", "/_sandbox/pace", headers=headers).body["max_allocations"] == 1
    es.perform_request("POST", "/_sandbox/reset", headers=headers)
    assert es.perform_request("GET", "/_sandbox/pace", headers=headers).body["max_allocations"] is None
