"""Transient errors are retried with exponential backoff and jitter within a total deadline; non-transient errors
stop the run with Elasticsearch's reason, the resource and the manifest location (issue 6, item 1).

Faults come from the sandbox's own hooks (PUT /_sandbox/faults) or, for a timeout, from a stalled request. The
client is the engine's `connect()`. Backoff is observed by recording the sleeps of the retry machinery (the
client's transport and the engine's connection module) instead of waiting them out: the assertions never depend
on wall time, and the tests stay fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from provisioning import ClusterError, converge, load_manifests
from provisioning import connection as engine_connection
from testbed.example_stack import connect, wait_for_log

SHOWS = [{"id": f"s{i}", "title": f"Show {i}"} for i in range(1, 6)]
MANIFEST = """\
kind: index
name: shows
spec:
  settings: {number_of_shards: 1, number_of_replicas: 0}
  mappings:
    dynamic: strict
    properties:
      id: {type: keyword}
      title: {type: text}
---
kind: documents
name: shows-seed
spec:
  index: shows
  source: data/shows.json
  id_field: id
"""
RETRY_MODULES = ("elastic_transport._transport", "provisioning.connection")


@pytest.fixture
def small_stack(tmp_path, monkeypatch):
    """An index and its five documents: every kind of request a transient error can hit, in two resources."""
    folder = tmp_path / "project"
    (folder / "manifests" / "data").mkdir(parents=True)
    (folder / "manifests" / "shows.yaml").write_text(MANIFEST)
    (folder / "manifests" / "data" / "shows.json").write_text(json.dumps(SHOWS))
    monkeypatch.chdir(folder)  # manifest locations are reported relative to the working directory

    def run(client, **options):
        from provisioning import Options, Reporter, make_context

        resources = load_manifests("manifests", env_file_dir=folder)
        ctx = make_context(client, stack="retries", options=Options(cache_dir=folder / ".cache", **options),
                           reporter=Reporter(quiet=True))
        return converge(resources, ctx, command="pytest")
    return run


@pytest.fixture
def retry_sleeps(monkeypatch):
    """The sleeps the retry machinery asks for, recorded and skipped; every other sleep happens as usual."""
    real_sleep = time.sleep
    recorded: list[float] = []

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals.get("__name__") in RETRY_MODULES:
            recorded.append(seconds)
            return real_sleep(0)
        return real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return recorded


def faults(sandbox, *rules, seed=0):
    sandbox.faults = type(sandbox.faults).from_dict({"seed": seed, "rules": list(rules)})


def attempts(sandbox, method, path):
    return [e for e in sandbox.log.entries() if e["method"] == method and e["path"] == path]


def count(sandbox, index="shows"):
    es = connect(sandbox.url)
    es.indices.refresh(index=index)
    return es.count(index=index)["count"]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_transient_status_is_retried_with_growing_jittered_backoff_and_the_apply_succeeds(
        sandbox, small_stack, retry_sleeps, status):
    faults(sandbox, {"path": "^/shows-000001$", "method": "PUT", "status": status, "times": 3})
    result = small_stack(connect(sandbox.url))
    assert {c.key for c in result.applied} == {"index/shows", "documents/shows-seed"}
    tries = attempts(sandbox, "PUT", "/shows-000001")
    assert [t["status"] for t in tries] == [status] * 3 + [200]
    assert count(sandbox) == len(SHOWS)
    # one pause before each retry, growing (exponential), never zero, within the total deadline
    assert len(retry_sleeps) == 3, retry_sleeps
    assert all(s > 0 for s in retry_sleeps)
    assert retry_sleeps[2] > retry_sleeps[0]
    assert sum(retry_sleeps) <= engine_connection.RETRY_DEADLINE


def test_backoff_is_jittered_two_identical_failures_do_not_wait_the_same(sandbox, small_stack, retry_sleeps):
    runs = []
    for _ in range(2):
        sandbox.reset()
        retry_sleeps.clear()
        faults(sandbox, {"path": "^/shows-000001$", "method": "PUT", "status": 503, "times": 3})
        small_stack(connect(sandbox.url))
        runs.append(list(retry_sleeps))
    assert len(runs[0]) == len(runs[1]) == 3
    assert runs[0] != runs[1]


def test_dropped_connections_are_retried_with_backoff_and_no_document_is_duplicated(sandbox, small_stack,
                                                                                     retry_sleeps):
    faults(sandbox, {"path": "^/_bulk$", "drop": True, "times": 2},
           {"path": "^/shows-000001$", "method": "PUT", "drop": True, "times": 1})
    small_stack(connect(sandbox.url))
    assert [t["fault"] for t in attempts(sandbox, "PUT", "/shows-000001")] == ["drop", None]
    assert [t["fault"] for t in wait_for_log(sandbox, lambda e: e["path"] == "/_bulk")] == ["drop", "drop", None]
    assert count(sandbox) == len(SHOWS)
    assert len(retry_sleeps) == 3 and all(s > 0 for s in retry_sleeps)


def test_a_request_that_times_out_is_retried_and_the_result_is_exact(ksb, small_stack, retry_sleeps):
    """The first bulk stalls past the client's timeout; as in ES, the stalled request still completes later, so
    the retry must be harmless (documents are indexed by id: still exactly five)."""
    ksb.stall("PUT", "/_bulk", seconds=1.5)
    small_stack(connect(ksb.url, request_timeout=0.5))
    assert len(wait_for_log(ksb, lambda e: e["path"] == "/_bulk", minimum=2)) == 2
    assert count(ksb) == len(SHOWS)
    assert retry_sleeps and all(s > 0 for s in retry_sleeps)


def test_a_transient_error_that_persists_fails_after_bounded_attempts_with_es_reason(sandbox, small_stack,
                                                                                    retry_sleeps):
    faults(sandbox, {"path": "^/shows-000001$", "method": "PUT", "status": 503})
    with pytest.raises(ClusterError) as caught:
        small_stack(connect(sandbox.url))
    message = str(caught.value)
    assert "index/shows" in message and "manifests/shows.yaml:1" in message, message
    assert "503" in message and "unavailable_shards_exception" in message and "injected fault" in message, message
    assert len(attempts(sandbox, "PUT", "/shows-000001")) == engine_connection.DEFAULT_MAX_RETRIES + 1
    assert sum(retry_sleeps) <= engine_connection.RETRY_DEADLINE
    assert attempts(sandbox, "PUT", "/_bulk") == []  # the run stopped: nothing after the failed resource
    lock = connect(sandbox.url).options(ignore_status=404).get(index="es-stack-ledger", id="retries:lock")
    assert lock.meta.status == 404  # and released its lock


def test_retries_stop_at_the_total_deadline(sandbox, small_stack, retry_sleeps, monkeypatch):
    """With a deadline shorter than the first pause, a throttled request is not retried at all."""
    monkeypatch.setattr(engine_connection, "RETRY_DEADLINE", min(engine_connection.RETRY_BACKOFF_BASE / 4, 0.1))
    faults(sandbox, {"path": "^/shows-000001$", "method": "PUT", "status": 429})
    with pytest.raises(ClusterError) as caught:
        small_stack(connect(sandbox.url))
    assert "429" in str(caught.value)
    assert len(attempts(sandbox, "PUT", "/shows-000001")) == 1
    assert retry_sleeps == []


@pytest.mark.parametrize(("status", "es_type"), [(400, "exception"), (403, "exception"), (404, "exception"),
                                                  (409, "exception")])
def test_a_non_transient_error_stops_the_run_at_once_with_es_reason_resource_and_location(
        sandbox, small_stack, retry_sleeps, status, es_type):
    faults(sandbox, {"path": "^/shows-000001$", "method": "PUT", "status": status})
    with pytest.raises(ClusterError) as caught:
        small_stack(connect(sandbox.url))
    message = str(caught.value)
    assert f"injected fault: {status}" in message, message  # Elasticsearch's own reason
    assert "index/shows" in message and "manifests/shows.yaml:1" in message, message
    assert len(attempts(sandbox, "PUT", "/shows-000001")) == 1  # not retried
    assert retry_sleeps == []
    assert attempts(sandbox, "PUT", "/_bulk") == []


def test_a_real_elasticsearch_refusal_names_the_reason_resource_and_location(sandbox, small_stack):
    """Not an injected fault: documents loaded into an index the stack does not declare (so validation cannot know
    its mapping) are refused by Elasticsearch itself (strict_dynamic_mapping_exception per bulk item)."""
    es = connect(sandbox.url)
    es.indices.create(index="external", mappings={"dynamic": "strict", "properties": {"id": {"type": "keyword"}}})
    Path("manifests/shows.yaml").write_text(MANIFEST.replace("  index: shows", "  index: external"))
    with pytest.raises(ClusterError) as caught:
        small_stack(es)
    message = str(caught.value)
    assert "strict_dynamic_mapping_exception" in message or "dynamic" in message, message
    assert "title" in message, message  # ES's reason names the field it refused
    assert "documents/shows-seed" in message and "manifests/shows.yaml:11" in message, message
    assert [e for e in sandbox.log.entries() if e["path"] == "/_bulk"], "the bulk request was sent once"
    assert len([e for e in sandbox.log.entries() if e["path"] == "/_bulk"]) == 1  # a 400 item is not retried
