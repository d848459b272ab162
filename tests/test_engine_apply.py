"""The engine end to end against the sandbox: idempotence, the lock, ordering, failures, read-after-write."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from provisioning import (
    LEDGER_INDEX,
    ClusterError,
    LockHeld,
    LockLost,
    ManifestError,
    converge,
    load_manifests,
    make_plan,
)
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
    from provisioning import applier

    running, peak, lock = [0], [0], threading.Lock()
    original = applier._run_change

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

    monkeypatch.setattr(applier, "_run_change", slow_create)
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


# ---- the lock is a lease ----------------------------------------------------------------------------------------


def lock_doc(es):
    return es.get(index=LEDGER_INDEX, id="test:lock")["_source"]


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def lost(ctx):
    try:
        ctx.ledger.check_lock()
    except LockLost:
        return True
    return False


def dead_run(es, lease=0.3):
    """A run that took the lock and died (no renewal, no release), and waits until its lease has expired."""
    dead = ctx_for(es)
    dead.ledger.acquire("invoke apply (killed run)", lease=lease)
    dead.ledger.stack_lock.stop_renewing()  # the process is gone: nothing renews its lease any more
    doc = lock_doc(es)
    wait_until(lambda: dead.ledger.lock_expired(doc))
    return dead, doc


def test_a_live_runs_lock_is_renewed_past_its_lease_and_still_refuses_others(es, sandbox, tmp_path):
    live = ctx_for(es)
    live.ledger.acquire("invoke apply (live run)", lease=0.6)
    try:
        first = lock_doc(es)
        # wait until the lock as first written has expired: only the heartbeat keeps the run's lock alive now
        wait_until(lambda: live.ledger.lock_expired(first))
        current = lock_doc(es)
        assert current["token"] == first["token"] and current["expires_at"] > first["expires_at"]
        assert live.ledger.lock_expired(first) and not live.ledger.lock_expired(current)
        start = sandbox.log.last_seq
        with pytest.raises(LockHeld) as raised:
            converge(stack(tmp_path), ctx_for(es), command="pytest")
        assert "invoke apply (live run)" in str(raised.value) and "lease runs until" in str(raised.value)
        assert [e for e in writes_since(sandbox, start) if "test:lock" not in e["path"]] == []
        with pytest.raises(LockHeld):
            ctx_for(es).ledger.acquire("second")
        assert lock_doc(es)["token"] == first["token"]
        live.ledger.check_lock()  # still ours
    finally:
        live.ledger.release()
    assert not es.exists(index=LEDGER_INDEX, id="test:lock")


def test_an_expired_lock_is_taken_over_with_a_warning(es, tmp_path):
    dead, old = dead_run(es)
    ctx = ctx_for(es)
    result = converge(stack(tmp_path), ctx, command="pytest after the kill")
    assert result.applied
    warnings = [m for m in ctx.reporter.messages if "took over the expired stack lock" in m]
    assert len(warnings) == 1 and "invoke apply (killed run)" in warnings[0] and old["acquired_at"] in warnings[0]
    assert not es.exists(index=LEDGER_INDEX, id="test:lock")  # the new run released it normally
    assert lost(dead)  # were the dead run to wake up, it would stop before its next write


def test_two_runs_racing_for_an_expired_lock_exactly_one_wins(es, sandbox):
    dead_run(es)
    sandbox.faults = type(sandbox.faults).from_dict({"latency_ms": 30})  # both read the expired lock first
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}
    runs = {name: ctx_for(es) for name in ("racer-a", "racer-b")}

    def run(name):
        barrier.wait()
        try:
            runs[name].ledger.acquire(name, warn=lambda text: None)
            outcomes[name] = "won"
        except LockHeld as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=(name,)) for name in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sandbox.faults = type(sandbox.faults)()
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    loser = next(name for name in runs if name not in winners)
    assert winners[0] in str(outcomes[loser])  # the refusal names the run that won
    assert lock_doc(es)["command"] == winners[0]
    assert runs[winners[0]].ledger.stack_lock.took_over["command"] == "invoke apply (killed run)"
    runs[winners[0]].ledger.release()


def test_a_run_whose_lock_is_broken_stops_before_its_next_write(es, sandbox, tmp_path, monkeypatch):
    from provisioning import applier

    original = applier._run_change
    intruder = ctx_for(es)

    def create_then_lose_the_lock(ctx, change):
        original(ctx, change)
        if change.name == "movies":
            intruder.ledger.break_lock()  # someone runs `invoke unlock --force` and applies
            intruder.ledger.acquire("invoke apply (the other run)")
            wait_until(lambda: lost(ctx))  # the run's next renewal finds the lock taken

    monkeypatch.setattr(applier, "_run_change", create_then_lose_the_lock)
    resources = stack(tmp_path)
    start = sandbox.log.last_seq
    with pytest.raises(LockLost) as raised:
        converge(resources, ctx_for(es, lock_lease=0.3), command="pytest")
    assert "lost the stack lock" in str(raised.value) and "invoke apply (the other run)" in str(raised.value)
    written = [e["path"] for e in writes_since(sandbox, start)]
    assert not any(p.startswith("/_bulk") or p.endswith("/_bulk") for p in written)  # wave 2 never ran
    assert lock_doc(es)["command"] == "invoke apply (the other run)"  # its lock was not released by the loser
    intruder.ledger.release()


def test_lock_times_follow_the_clusters_clock_when_a_date_header_shows_skew(es):
    import email.utils
    from types import SimpleNamespace

    lock = ctx_for(es).ledger.stack_lock
    ahead = SimpleNamespace(headers={"date": email.utils.formatdate(time.time() + 3600, usegmt=True)})
    lock._observe(ahead)  # the cluster's clock is an hour ahead of ours: times follow the cluster
    assert abs(lock.now() - (time.time() + 3600)) < 5
    doc = {"expires_at": "2026-01-01T00:00:00+00:00", "lease_seconds": 60}
    assert lock.expires(doc) == dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() + 5  # + the margin
    lock._observe(SimpleNamespace(headers={"date": email.utils.formatdate(time.time(), usegmt=True)}))
    assert abs(lock.now() - time.time()) < 0.5  # within the header's resolution: local time
    assert lock.expires({"command": "a lock without a lease"}) is None  # only `unlock --force` frees it


def test_a_lock_written_without_a_token_is_still_seen_as_held(es, sandbox, tmp_path):
    # lock documents written before tokens and leases existed carry neither: a run holding no lock (token None)
    # must not mistake such a lock for its own
    resources = stack(tmp_path)
    other = ctx_for(es)
    other.ledger.ensure_index()
    es.index(index=LEDGER_INDEX, id="test:lock", refresh=True,
             document={"type": "lock", "stack": "test", "holder": "ci@old-agent", "pid": 1,
                       "command": "invoke apply (older version)", "acquired_at": "2026-01-01T00:00:00+00:00"})
    ctx = ctx_for(es)
    ctx.ledger.load()
    assert ctx.ledger.lock_holder is not None and ctx.ledger.lock_holder["holder"] == "ci@old-agent"
    start = sandbox.log.last_seq
    with pytest.raises(LockHeld, match="ci@old-agent"):
        converge(resources, ctx_for(es), command="pytest")
    assert writes_since(sandbox, start) == []


def test_lock_renewal_ends_when_its_client_is_closed(sandbox):
    """A closed client means the run holding the lock is over: its renewal thread stops instead of retrying (and
    logging) against a closed connection pool for the rest of the process."""
    from elasticsearch import Elasticsearch

    client = Elasticsearch(sandbox.url, max_retries=0)
    ctx = ctx_for(client)
    ctx.ledger.ensure_index()
    lock = ctx.ledger.stack_lock
    lock.acquire("pytest", lease=0.3)
    renewal = lock._thread
    assert renewal is not None and renewal.is_alive()
    client.close()
    renewal.join(timeout=5)
    assert not renewal.is_alive()
