"""Trained-model definition parts as ES stores them (refresh on the last part only, stored concurrently) and
partial deployments under the pace knobs."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from elasticsearch import ApiError, Elasticsearch

from testbed.tiny_model import traced_tiny_cross_encoder
from tests.sandbox.test_ml import MODEL, upload

HEADERS = {"accept": "application/json", "content-type": "application/json"}


@pytest.fixture(scope="module")
def traced():
    return traced_tiny_cross_encoder()


def pace(es, **knobs) -> None:
    es.perform_request("PUT", "/_sandbox/pace", body=knobs, headers=HEADERS)


def fully_defined(es) -> bool:
    config = es.ml.get_trained_models(model_id=MODEL, include="definition_status")["trained_model_configs"][0]
    return config["fully_defined"]


def put_parts(es, traced, order: list[int], chunk: int = 64 * 1024) -> int:
    data = traced.definition()
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    for number in order:
        es.ml.put_trained_model_definition_part(
            model_id=MODEL, part=number, definition=base64.b64encode(chunks[number]).decode(),
            total_definition_length=len(data), total_parts=len(chunks))
    return len(chunks)


def test_parts_stored_after_the_last_part_are_invisible_until_the_next_refresh(es, traced):
    pace(es, ml_refresh_seconds=60)
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    total = len(range(0, len(traced.definition()), 64 * 1024))
    assert total >= 3, "the test needs at least three parts"
    # the last part first (its write refreshes the index), then the others: acknowledged but not yet searchable
    put_parts(es, traced, [total - 1] + list(range(total - 1)))
    es.ml.put_trained_model_vocabulary(model_id=MODEL, vocabulary=traced.vocabulary["vocabulary"])
    assert fully_defined(es) is False
    with pytest.raises(ApiError) as exc:
        es.ml.start_trained_model_deployment(model_id=MODEL, wait_for="started")
    assert exc.value.meta.status == 400
    assert "Model definition truncated" in exc.value.body["error"]["reason"]


def test_the_periodic_refresh_makes_late_parts_visible(es, traced):
    pace(es, ml_refresh_seconds=0.3)
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    total = len(range(0, len(traced.definition()), 64 * 1024))
    put_parts(es, traced, [total - 1] + list(range(total - 1)))
    assert fully_defined(es) is False
    time.sleep(0.4)
    assert fully_defined(es) is True


def test_parts_in_order_are_complete_at_once(es, traced):
    pace(es, ml_refresh_seconds=60)
    upload(es, traced)
    assert fully_defined(es) is True


def test_definition_parts_are_checked_outside_the_cluster_lock(es, sandbox, traced):
    """While another request holds the cluster lock, a part is still parsed and checked (a bad one is refused at
    once); only storing a good part waits for the lock. Parts from several threads all end up stored."""
    es.ml.put_trained_model(model_id=MODEL, **traced.config)
    piece = base64.b64encode(b"x" * 256 * 1024).decode()
    total = 16
    answers: list[object] = []

    def send(numbers: list[int], definition: str = piece) -> None:
        client = Elasticsearch(sandbox.url)
        try:
            for n in numbers:
                client.ml.put_trained_model_definition_part(model_id=MODEL, part=n, definition=definition,
                                                            total_definition_length=total * 256 * 1024,
                                                            total_parts=total)
            answers.append("stored")
        except ApiError as exc:
            answers.append(exc.meta.status)
        finally:
            client.close()

    good = [threading.Thread(target=send, args=(list(range(i, total, 4)),)) for i in range(4)]
    bad = threading.Thread(target=send, args=([0], "not base64!"))
    with sandbox.cluster.lock:
        for thread in good:
            thread.start()
        bad.start()
        bad.join(10)
        assert not bad.is_alive() and answers == [400]  # refused without the lock
        assert all(thread.is_alive() for thread in good)  # these wait for the lock, to store
    for thread in good:
        thread.join(60)
    assert answers.count("stored") == 4, answers
    assert sorted(sandbox.cluster.ml.models[MODEL].parts) == list(range(total))


def test_a_deployment_that_does_not_fit_is_started_but_not_fully_allocated(es, traced):
    upload(es, traced)
    pace(es, max_allocations=2, allocation_seconds=0.3)
    es.ml.start_trained_model_deployment(model_id=MODEL, number_of_allocations=4, wait_for="started")

    def status() -> dict:
        stats = es.ml.get_trained_models_stats(model_id=MODEL)["trained_model_stats"][0]["deployment_stats"]
        return stats["allocation_status"]

    assert status() == {"allocation_count": 1, "target_allocation_count": 4, "state": "started"}
    time.sleep(0.7)
    assert status() == {"allocation_count": 2, "target_allocation_count": 4, "state": "started"}  # capped at 2
    pace(es)  # knobs off: the cluster now has room
    assert status() == {"allocation_count": 4, "target_allocation_count": 4, "state": "fully_allocated"}
