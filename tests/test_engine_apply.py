"""The engine end to end against the sandbox: idempotence, the lock, ordering, failures, read-after-write."""

from __future__ import annotations

import threading
import time

import pytest

from provisioning import (
    LEDGER_INDEX,
    ClusterError,
    LockHeld,
    ManifestError,
    converge,
    load_manifests,
    make_plan,
)
from provisioning.kinds import KINDS
from tests.engine_helpers import MOVIE_MAPPINGS, check, ctx_for, documents, index, write_docs, writes_since

SETTINGS = {"number_of_shards": 1, "number_of_replicas": 0}


def stack(tmp_path):
    data = write_docs(tmp_path / "movies.json", [{"id": i, "title": f"Movie {i}", "year": 2000 + i} for i in range(5)])
    return [index("movies", SETTINGS, MOVIE_MAPPINGS, {"movies-read": {}}),
            index("shows", SETTINGS, MOVIE_MAPPINGS),
            documents("movies-seed", "movies", data),
            check("has-movies", "movies", {"query": {"match_all": {}}}, {"total": 5})]


def test_second_apply_makes_zero_write_requests(es, sandbox, tmp_path):
    resources = stack(tmp_path)
    first = converge(resources, ctx_for(es), command="pytest")
    assert {c.key for c in first.applied} == {"index/movies", "index/shows", "documents/movies-seed"}
    assert [r.ok for r in first.checks] == [True]
    start = sandbox.log.last_seq
    second = converge(resources, ctx_for(es), command="pytest")
    assert second.applied == [] and not second.plan.has_changes
    assert writes_since(sandbox, start) == []
    assert [r.ok for r in second.checks] == [True]  # checks still run (reads only)


def test_no_op_plan_reads_in_a_fixed_number_of_requests(es, sandbox, tmp_path):
    def plan_requests(n):
        resources = [index(f"idx-{i:03d}", SETTINGS) for i in range(n)]
        converge(resources, ctx_for(es, parallelism=8), command="pytest")
        start = sandbox.log.last_seq
        assert not make_plan(resources, ctx_for(es)).has_changes
        return len(sandbox.log.entries(start))

    assert plan_requests(2) == plan_requests(40)


def test_apply_runs_dependencies_first_and_deletes_last(es, sandbox, tmp_path):
    resources = stack(tmp_path)
    plan = make_plan(resources, ctx_for(es))
    order = [[c.key for c in wave] for wave in plan.waves]
    assert order == [["index/movies", "index/shows"], ["documents/movies-seed"]]
    converge(resources, ctx_for(es), command="pytest")
    shows_only = [r for r in resources if r.key == "index/shows"]
    plan = make_plan(shows_only, ctx_for(es, allow_data_loss=True))
    # documents are deleted before the index they live in (reverse dependency order)
    assert [[c.key for c in wave] for wave in plan.waves] == [["documents/movies-seed"], ["index/movies"]]
    converge(shows_only, ctx_for(es, allow_data_loss=True), command="pytest")
    assert not es.indices.exists(index="movies-000001") and es.indices.exists(index="shows-000001")


def test_independent_changes_run_concurrently_up_to_the_bound(es, monkeypatch):
    kind = KINDS["index"]
    running, peak, lock = [0], [0], threading.Lock()
    original = kind.create

    def slow_create(ctx, change):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        try:
            original(ctx, change)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(kind, "create", slow_create)
    converge([index(f"p{i}", SETTINGS) for i in range(6)], ctx_for(es, parallelism=3), command="pytest")
    assert peak[0] == 3


def test_failed_wave_stops_the_apply_and_names_the_resource(es, sandbox, tmp_path):
    resources = stack(tmp_path)
    sandbox.faults = type(sandbox.faults).from_dict(
        {"rules": [{"path": "^/movies-000001$", "method": "PUT", "status": 400}]})
    with pytest.raises(ClusterError) as raised:
        converge(resources, ctx_for(es), command="pytest")
    message = str(raised.value)
    assert "index/movies" in message and "manifests/test.yaml:1" in message and "400" in message
    sandbox.faults = type(sandbox.faults)()
    assert not es.exists(index=LEDGER_INDEX, id="test:lock")  # the lock is released on errors too
    # the wave after the failed one never ran: no documents were loaded
    ctx = ctx_for(es)
    ctx.ledger.load()
    assert "movies-seed" not in ctx.ledger.owned("documents")


def test_concurrent_apply_is_refused_with_the_holder_named(es, sandbox, tmp_path):
    resources = stack(tmp_path)
    other = ctx_for(es)
    other.ledger.acquire("invoke apply (pipeline 7)")
    start = sandbox.log.last_seq
    with pytest.raises(LockHeld) as raised:
        converge(resources, ctx_for(es), command="pytest")
    assert "invoke apply (pipeline 7)" in str(raised.value)
    assert "invoke unlock --force" in str(raised.value)
    assert writes_since(sandbox, start) == []
    other.ledger.release()
    converge(resources, ctx_for(es), command="pytest")


def test_lock_is_compare_and_set(es):
    first, second = ctx_for(es), ctx_for(es)
    first.ledger.acquire("one")
    with pytest.raises(LockHeld):
        second.ledger.acquire("two")
    broken = second.ledger.break_lock()
    assert broken["command"] == "one"
    second.ledger.acquire("two")
    first.ledger.release()  # stale holder: must not release the lock it no longer holds
    assert es.get(index=LEDGER_INDEX, id="test:lock")["_source"]["command"] == "two"


def test_invalid_manifest_set_writes_nothing(es, sandbox, tmp_path):
    (tmp_path / "bad.yaml").write_text("kind: index\nname: Movies\nspec:\n  setings: {}\n")
    start = sandbox.log.last_seq
    with pytest.raises(ManifestError) as raised:
        load_manifests(tmp_path)
    assert "bad.yaml" in str(raised.value)
    assert sandbox.log.entries(start) == []


def test_stacks_do_not_see_each_others_resources(es):
    converge([index("movies", SETTINGS)], ctx_for(es, stack="blue"), command="pytest")
    assert make_plan([], ctx_for(es, stack="red")).changes == []
    assert [c.action for c in make_plan([], ctx_for(es, stack="blue", allow_data_loss=True)).changes] == ["delete"]


def test_two_applies_racing_one_wins_the_other_is_refused(es, sandbox, tmp_path):
    resources = stack(tmp_path)
    sandbox.faults = type(sandbox.faults).from_dict({"latency_ms": 20})  # both plan before either locks
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run():
        barrier.wait()
        try:
            outcomes.append(converge(resources, ctx_for(es), command="racer"))
        except LockHeld as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sandbox.faults = type(sandbox.faults)()
    refused = [o for o in outcomes if isinstance(o, LockHeld)]
    applied = [o for o in outcomes if not isinstance(o, LockHeld)]
    assert len(refused) == 1 and len(applied) == 1 and applied[0].applied
    assert "racer" in str(refused[0])
    assert es.count(index="movies")["count"] == 5
