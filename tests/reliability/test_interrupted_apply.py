"""An apply killed at any write request is followed by an apply that converges (issue 6, item 2).

The write requests are enumerated from a clean apply of the example stack (tiny three-part model, rerank endpoint,
25 documents, checks): each becomes a kill point (method, path, occurrence). For every one:

1. the cluster is emptied and an apply runs with retries disabled (max_retries=0);
2. at the kill point the sandbox "kills" the run: that request and every later one are dropped without reaching the
   cluster, as when the pipeline's process dies (its lock is never released, nothing more is sent);
3. a new run (another process: new client, same cache directory) applies again. A lock left by the killed run is
   a lease (short here: LEASE): while it lasts the apply is refused with its expiry named; once it has expired
   the next apply takes it over (or, with nothing left to change, removes it), with a warning naming the killed
   run, and applies (no `invoke unlock`);
4. the end state must equal a clean apply's: empty plan, one physical index behind the alias and no orphan, one
   fully defined model, one deployment, one endpoint, the exact 25 documents, one ledger record per resource, no
   lock, and every check passing.

Killing *before* request N reaches the cluster covers every gap between two requests (the cluster state after
"answer to N-1 lost" is the same), so one pass over the write requests covers every point a process can die at.
Every write request is a kill point, not only one per kind (~16 for the example stack, bounded by MAX_KILL_POINTS).

Further passes over the same write requests: a soft interruption (one dropped connection, retries off: the engine
unwinds, names what failed and releases its lock), an answer lost AFTER the cluster applied the write (the client's
retry meets its own earlier success), and an index replacement (reindex + alias swap) killed at each of its writes.
"""

from __future__ import annotations

import re
from functools import partial

import pytest

from provisioning import LockHeld
from testbed.example_stack import (
    ENDPOINT,
    INDEX,
    MODEL_ID,
    connect,
    movie_ids,
    stack_state,
    stored_ids,
    wait_for_log,
    write_points,
)

# Bounds: the example stack makes ~16 writes; a stack that suddenly makes many more should not make CI crawl.
MAX_KILL_POINTS = 40
# The lease (seconds) a killed run takes the lock with: its lock expires that long after its last renewal, and the
# re-run takes it over then (the default lease is 60 s; reference runs use a long one, see ExampleStack.context).
LEASE = 0.3


@pytest.fixture
def clean_run(ksb, stack):
    """A clean apply: its write requests (the kill points) and the end state every interrupted run must reach."""
    es = connect(ksb.url)
    result = stack.apply(es)
    assert not result.checks_failed
    points = write_points(ksb.log.entries())
    state = stack_state(es)
    ksb.reset()
    return points, state


def rerun_until_converged(ksb, stack, cache_dir):
    """What a pipeline does after a killed run: apply again. While the dead run's lease lasts the apply is refused,
    naming its expiry; once it has expired, the apply takes the lock over (warning) and converges. No unlock.
    Returns the client, the result and the takeover warnings."""
    es = connect(ksb.url)
    try:
        result = stack.apply(es, cache_dir=cache_dir)
    except LockHeld as exc:
        assert exc.expires_at and exc.expires_at in str(exc), str(exc)
        assert stack.wait_out_the_lease(es) is not None
        result = stack.apply(es, cache_dir=cache_dir)
    return es, result, stack.takeovers()


def end_state_problems(es, stack, result, expected) -> list[str]:
    problems = []
    if result is None:
        return ["the re-run was cancelled"]
    failed = [c.name for c in result.checks if not getattr(c, "ok", True)]
    if failed:
        problems.append(f"checks failed after the re-run: {failed}")
    state = stack_state(es)
    if state != expected:
        diff = {k: (state[k], expected[k]) for k in expected if state.get(k) != expected[k]}
        problems.append(f"end state differs from a clean apply (got, expected): {diff}")
    if state.get("documents", {}).get(INDEX) is not None and stored_ids(es) != sorted(movie_ids()):
        problems.append("the stored document ids differ from the data file")
    plan = stack.plan(es)
    if plan.has_changes:
        problems.append("plan after the re-run is not empty: "
                        + ", ".join(f"{c.key} {c.action}" for c in plan.changes if c.action != "noop"))
    return problems


def write_kind(method: str, path: str) -> str:
    """A write request's kind: its method and path with names and numbers replaced (one per API call site)."""
    path = re.sub(r"/_doc/[^/]+:lock$", "/_doc/<lock>", path)
    path = re.sub(r"/_doc/[^/<]+$", "/_doc/<record>", path)
    path = re.sub(r"/definition/\d+$", "/definition/<part>", path)
    path = re.sub(r"/_create/[^/]+$", "/_create/<lock>", path)
    path = re.sub(r"-\d{6}\b", "-<generation>", path)
    return f"{method} {path}"


def killed_at(ksb, point, run) -> bool:
    """Run `run(client)` on a connection that dies at `point` (method, path, occurrence); True when it got there."""
    ksb.arm(*point)
    client = connect(ksb.url, max_retries=0)
    with pytest.raises(Exception):  # noqa: B017 - whatever the engine raises when its connection dies
        run(client)
    # the killed process's connections die with it: its lock renewal (a thread here, not a process of its own) ends
    # at its next try instead of sending renewals into the next runs (and their fault counts)
    client.close()
    reached = ksb.killed.is_set()
    ksb.disarm()
    return reached


def test_the_kill_points_cover_every_kind_of_write_request(clean_run):
    """Every write request of the apply is a kill point (not a sample): here, the kinds they cover."""
    points, _ = clean_run
    kinds = sorted({write_kind(m, p) for m, p, _ in points})
    assert kinds == sorted([
        "PUT /es-stack-ledger", "PUT /es-stack-ledger/_create/<lock>", "DELETE /es-stack-ledger/_doc/<lock>",
        "PUT /es-stack-ledger/_doc/<record>", f"PUT /{INDEX}-<generation>",
        f"PUT /_ml/trained_models/{MODEL_ID}", f"PUT /_ml/trained_models/{MODEL_ID}/definition/<part>",
        f"PUT /_ml/trained_models/{MODEL_ID}/vocabulary", f"PUT /_inference/rerank/{ENDPOINT}", "PUT /_bulk"]), kinds
    assert sum(write_kind(m, p).endswith("/definition/<part>") for m, p, _ in points) >= 2  # a multi-part model
    assert len(points) <= MAX_KILL_POINTS


@pytest.mark.timeout(600)
def test_an_apply_killed_at_any_write_request_converges_on_the_next_apply(ksb, stack, clean_run):
    points, expected = clean_run
    assert expected["orphan_indices"] == [] and expected["documents"] == {INDEX: len(movie_ids())}
    failures: dict[str, list[str]] = {}
    takeovers = 0
    for method, path, occurrence in points:
        label = f"{method} {path} #{occurrence}"
        ksb.reset()
        cache = stack.cache_dir(fresh=True)  # this pipeline agent's cache (upload journal), kept across its runs
        if not killed_at(ksb, (method, path, occurrence),
                         partial(stack.apply, cache_dir=cache, lock_lease=LEASE)):
            failures[label] = ["the kill point was never reached (the apply's requests changed?)"]
            continue
        try:
            es, result, notes = rerun_until_converged(ksb, stack, cache)
        except Exception as exc:  # a re-run that fails is exactly what this test looks for: collect, go on
            failures[label] = [f"the re-run failed: {type(exc).__name__}: {exc}"]
            continue
        takeovers += bool(notes)
        if notes and "pytest apply" not in notes[0]:
            failures[label] = [f"the takeover warning does not name the killed run: {notes[0]}"]
        problems = end_state_problems(es, stack, result, expected)
        if problems:
            failures[label] = problems
    assert failures == {}, "\n".join(f"killed at {k}:\n  " + "\n  ".join(v) for k, v in failures.items())
    # every kill after the lock was taken and before it was released leaves it behind: the takeover was exercised
    # (the kills before it: at the ledger's creation, at its identity document, at the lock's own creation)
    assert takeovers >= len(points) - 3


@pytest.mark.timeout(600)
def test_an_apply_whose_connection_drops_at_any_write_unwinds_and_the_next_apply_converges(ksb, stack, clean_run):
    """Soft interruption: one write's connection drops, retries are off, the engine stops, releases its lock, and
    says which resource failed; a plain re-run converges (no lock to take over, unless the release itself was
    dropped)."""
    points, expected = clean_run
    failures: dict[str, list[str]] = {}
    for method, path, occurrence in points:
        label = f"{method} {path} #{occurrence}"
        ksb.reset()
        cache = stack.cache_dir(fresh=True)
        escaped = "^" + re.escape(path) + "$"
        ksb.faults = type(ksb.faults).from_dict(
            {"rules": [{"path": escaped, "method": method, "drop": True, "nth": occurrence}]})
        with pytest.raises(Exception) as caught:  # noqa: B017
            stack.apply(connect(ksb.url, max_retries=0), cache_dir=cache, lock_lease=LEASE)
        dropped = wait_for_log(ksb, lambda e: e.get("fault") == "drop")
        ksb.faults = type(ksb.faults)()
        if len(dropped) != 1:
            failures[label] = [f"expected exactly one dropped request, got {len(dropped)}; the run raised "
                               f"{type(caught.value).__name__}: {caught.value}"]
            continue
        if path.startswith(f"/es-stack-ledger/_doc/{stack.stack}:") and not path.endswith(":lock") or \
                not path.startswith("/es-stack-ledger"):
            # the error names what failed (a resource key or the ledger), not just "connection error"
            message = str(caught.value)
            if not any(word in message for word in ("index/", "trained_model/", "inference_endpoint/",
                                                      "documents/", "ledger", "lock")):
                failures[label] = [f"the error does not say what failed: {message}"]
                continue
        try:
            es, result, notes = rerun_until_converged(ksb, stack, cache)
        except Exception as exc:
            failures[label] = [f"the re-run failed: {type(exc).__name__}: {exc}"]
            continue
        if notes and not (method == "DELETE" and path.endswith(":lock")):
            failures[label] = ["the interrupted run did not release its lock"]
            continue
        problems = end_state_problems(es, stack, result, expected)
        if problems:
            failures[label] = problems
    assert failures == {}, "\n".join(f"dropped at {k}:\n  " + "\n  ".join(v) for k, v in failures.items())


@pytest.mark.timeout(600)
def test_an_index_replacement_killed_at_any_write_request_converges_without_losing_a_document(ksb, stack):
    """The riskiest apply: a static setting changes (number_of_shards), so `movies` moves to a new physical index
    (create, block writes, reindex, swap the alias, delete the old one). Killed at any of its writes, the next apply
    must end with the alias on one index holding every document and no leftover generation."""
    import dataclasses

    resharded = dataclasses.replace(stack, extra_vars={"MOVIES_SHARDS": "2"})
    es = connect(ksb.url)
    stack.apply(es)
    mark = ksb.log.last_seq
    result = resharded.apply(es)
    assert [c.action for c in result.applied if c.key == f"index/{INDEX}"] == ["replace"]
    points = write_points(ksb.log.entries(mark))
    expected = stack_state(es)
    assert expected["orphan_indices"] == [] and expected["documents"] == {INDEX: len(movie_ids())}
    assert any(path.endswith("/_reindex") or path == "/_reindex" for _, path, _ in points), points

    failures: dict[str, list[str]] = {}
    for method, path, occurrence in points:
        label = f"{method} {path} #{occurrence}"
        ksb.reset()
        cache = stack.cache_dir(fresh=True)
        stack.apply(connect(ksb.url), cache_dir=cache)
        if not killed_at(ksb, (method, path, occurrence),
                         partial(resharded.apply, cache_dir=cache, lock_lease=LEASE)):
            failures[label] = ["the kill point was never reached"]
            continue
        # readers were never left without the alias, whatever the kill point
        es = connect(ksb.url)
        if es.count(index=INDEX)["count"] != len(movie_ids()):
            failures[label] = [f"right after the kill, `{INDEX}` serves {es.count(index=INDEX)['count']} documents"]
        try:
            es, result, _ = rerun_until_converged(ksb, resharded, cache)
        except Exception as exc:
            failures.setdefault(label, []).append(f"the re-run failed: {type(exc).__name__}: {exc}")
            continue
        problems = end_state_problems(es, resharded, result, expected)
        if problems:
            failures.setdefault(label, []).extend(problems)
    assert failures == {}, "\n".join(f"killed at {k}:\n  " + "\n  ".join(v) for k, v in failures.items())


@pytest.mark.timeout(300)
def test_a_half_uploaded_model_removed_meanwhile_is_uploaded_whole_by_the_next_apply(ksb, stack, clean_run):
    """Killed mid-upload (parts 0 and 1 stored, the upload journal in the cache says so), then the half model is
    removed (a destroy, or someone deleting it by hand); the next apply from the same agent must upload every part
    again, not trust the journal over the cluster."""
    _, expected = clean_run
    cache = stack.cache_dir(fresh=True)
    part = f"/_ml/trained_models/{MODEL_ID}/definition/2"
    ksb.arm("PUT", part, 1)
    killed = connect(ksb.url, max_retries=0)
    with pytest.raises(Exception):  # noqa: B017
        stack.apply(killed, cache_dir=cache, upload_workers=1, lock_lease=LEASE)
    killed.close()  # the killed process's connections die with it (see killed_at)
    assert ksb.killed.is_set()
    ksb.disarm()
    es = connect(ksb.url)
    assert stack.wait_out_the_lease(es)["command"] == "pytest apply"  # the killed run's lock is left behind
    stack.destroy(es, cache_dir=cache)
    assert len(stack.takeovers()) == 1
    assert stack_state(es)["models"] == []
    result = stack.apply(es, cache_dir=cache)
    assert end_state_problems(es, stack, result, expected) == []


@pytest.mark.timeout(600)
def test_a_write_whose_answer_is_lost_after_it_was_applied_is_retried_safely(ksb, stack, clean_run):
    """A dropped connection AFTER Elasticsearch applied the write (the common case behind a proxy or a node
    restart): the client retries a request that already happened. For every write request of the apply, its
    answer is lost once; the apply may fail on the retry, but never with a half-built stack: the next apply (with
    no unlock needed) converges."""
    points, expected = clean_run
    failures: dict[str, list[str]] = {}
    first_try_failed = []
    for method, path, occurrence in points:
        label = f"{method} {path} #{occurrence}"
        ksb.reset()
        cache = stack.cache_dir(fresh=True)
        ksb.lose_answer(method, path, occurrence)
        es = connect(ksb.url)
        try:
            result = stack.apply(es, cache_dir=cache)
        except Exception as exc:  # noqa: BLE001 - a failed retry is allowed; what follows must converge
            first_try_failed.append(f"{label}: {type(exc).__name__}: {exc}")
            result = None
        fired = ksb.lost.is_set()
        ksb.disarm()
        if not fired:
            failures[label] = ["the answer was never lost (the apply's requests changed?)"]
            continue
        if result is None:
            try:
                result = stack.apply(es, cache_dir=cache)
            except Exception as exc:  # noqa: BLE001
                failures[label] = [f"the re-run failed: {type(exc).__name__}: {exc}"]
                continue
        problems = end_state_problems(es, stack, result, expected)
        if problems:
            failures[label] = problems
    assert failures == {}, "\n".join(f"answer lost at {k}:\n  " + "\n  ".join(v) for k, v in failures.items()) \
        + "\nfailed on the first try:\n" + "\n".join(first_try_failed)
    # and better: the retry recognises its own earlier success, so the apply itself succeeds
    assert first_try_failed == [], "\n".join(first_try_failed)


@pytest.mark.timeout(600)
def test_a_destroy_killed_at_any_write_request_is_finished_by_the_next_destroy(ksb, stack):
    """Tear-down is interrupted too (a cancelled pipeline): killed at each of its writes, the next destroy removes
    what is left of the stack and its records, and nothing else."""
    es = connect(ksb.url)
    stack.apply(es)
    mark = ksb.log.last_seq
    stack.destroy(es)
    points = write_points(ksb.log.entries(mark))
    assert any(m == "DELETE" and p.startswith("/_ml/trained_models/") for m, p, _ in points), points
    failures: dict[str, list[str]] = {}
    for method, path, occurrence in points:
        label = f"{method} {path} #{occurrence}"
        ksb.reset()
        cache = stack.cache_dir(fresh=True)
        stack.apply(connect(ksb.url), cache_dir=cache)
        es.indices.create(index="not-ours", mappings={"properties": {"a": {"type": "keyword"}}})
        if not killed_at(ksb, (method, path, occurrence),
                         partial(stack.destroy, cache_dir=cache, lock_lease=LEASE)):
            failures[label] = ["the kill point was never reached"]
            continue
        try:
            stack.destroy(es, cache_dir=cache)
        except LockHeld:  # the killed destroy's lease still runs: wait it out, the next destroy takes the lock over
            stack.wait_out_the_lease(es)
            try:
                stack.destroy(es, cache_dir=cache)
            except Exception as exc:  # noqa: BLE001
                failures[label] = [f"the second destroy failed: {type(exc).__name__}: {exc}"]
                continue
        except Exception as exc:  # noqa: BLE001
            failures[label] = [f"the second destroy failed: {type(exc).__name__}: {exc}"]
            continue
        state = stack_state(es)
        left = {k: state[k] for k in ("models", "endpoints", "deployments", "ledger", "documents") if state[k]}
        if state["orphan_indices"] != ["not-ours"] or left:
            failures[label] = [f"left behind: {left}, indices without alias: {state['orphan_indices']}"]
    assert failures == {}, "\n".join(f"destroy killed at {k}:\n  " + "\n  ".join(v) for k, v in failures.items())
