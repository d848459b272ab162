"""The plan is the contract (issue 9): what apply sends is exactly the operations of the plan it showed, a saved
plan applies exactly or is refused before any write, destructive changes are planned, shown and gated, a model
is identified by its content, and nothing another stack or nobody-we-know owns is touched.

Every check reads the sandbox's request log: the requests a run sent, and which of them wrote.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from fnmatch import fnmatch
from urllib.parse import unquote

import pytest

from provisioning import Refused, apply_saved, make_plan, plan_to_dict
from provisioning.model import Request, Step
from provisioning.planfile import apply_file, save
from testbed.example_stack import ENDPOINT, INDEX, LEDGER, MANIFESTS, MODEL_ID, STACK, connect, movie_ids, stored_ids

INFRASTRUCTURE = (f"PUT /{LEDGER}", f"PUT /{LEDGER}/_create/*", f"PUT /{LEDGER}/_doc/*:lock",
                  f"POST /{LEDGER}/_doc/*:lock", f"DELETE /{LEDGER}/_doc/*:lock", f"PUT /{LEDGER}/_doc/_ledger")


def _matches(pattern: str, method: str, path: str) -> bool:
    want_method, _, want_path = pattern.partition(" ")
    return want_method == method and fnmatch(path, want_path)


def assert_sent_exactly(plan, entries) -> None:
    """Every planned request was sent (as often as planned), and every write sent is a planned request or one a
    planned step declares (`sends`), or the stack lock's (taken around every apply, outside the plan)."""
    planned = Counter((op.method, unquote(op.path)) for c in plan.changes for op in c.operations
                      if isinstance(op, Request))
    patterns = [p for c in plan.changes for op in c.operations if isinstance(op, Step) for p in op.sends]
    sent = Counter((e["method"], e["path"]) for e in entries if e["status"] < 300 or e["status"] == 404)
    missing = {k: n for k, n in planned.items() if sent[k] < n}
    assert not missing, f"planned but not sent: {missing}"
    for e in entries:
        if not e["write"]:
            continue
        key = (e["method"], e["path"])
        assert key in planned or any(_matches(p, *key) for p in patterns) or \
            any(_matches(p, *key) for p in INFRASTRUCTURE), f"sent but not planned: {key}"


def apply_and_log(stack, sandbox, client, **options):
    """Plan, then apply exactly that plan; (the plan, the log of the apply)."""
    ctx = stack.context(client, **options)
    plan = make_plan(stack.resources(), ctx)
    seq = sandbox.log.last_seq
    apply_saved(plan, ctx, command="pytest")
    return plan, sandbox.log.entries(seq)


@pytest.fixture
def client(ksb):
    c = connect(ksb.url)
    yield c
    c.close()


@pytest.fixture
def applied(stack, ksb, client):
    stack.apply(client)
    return stack


# ---- the requests apply sends are the plan's -------------------------------------------------------------------
def test_a_create_sends_exactly_its_plan(stack, ksb, client):
    plan, entries = apply_and_log(stack, ksb, client)
    assert {c.action for c in plan.changes} == {"create"}
    assert_sent_exactly(plan, entries)
    # each ownership record the plan shows is written: none is shown that apply would find unchanged and skip
    shown = Counter(f"/{LEDGER}/_doc/{stack.stack}:{op.args['kind']}:{op.args['name']}" for c in plan.changes
                    for op in c.operations if isinstance(op, Step) and op.name == "record_ownership")
    written = Counter(unquote(e["path"]) for e in entries if e["method"] == "PUT" and unquote(e["path"]) in shown)
    assert written == shown


@pytest.mark.parametrize("variables, actions", [
    ({"MOVIES_REPLICAS": "1", "RERANK_NUM_ALLOCATIONS": "2"},
     {"index/movies": "update", f"inference_endpoint/{ENDPOINT}": "update"}),
    ({"MOVIES_SHARDS": "2"}, {"index/movies": "replace"}),
    ({"RERANK_NUM_THREADS": "2"}, {f"inference_endpoint/{ENDPOINT}": "replace"}),
])
def test_updates_and_replacements_send_exactly_their_plan(applied, ksb, client, variables, actions):
    applied.extra_vars = variables
    plan, entries = apply_and_log(applied, ksb, client)
    assert {c.key: c.action for c in plan.changes if c.action != "noop"} == actions
    assert_sent_exactly(plan, entries)
    if "index/movies" in actions and actions["index/movies"] == "replace":
        replace = next(c for c in plan.changes if c.key == "index/movies")
        assert [op.name for op in replace.operations if isinstance(op, Step)] == ["reindex_and_count",
                                                                                   "record_ownership"]
        assert sorted(stored_ids(client)) == sorted(movie_ids())
    assert make_plan(applied.resources(), applied.context(client)).has_changes is False


def test_a_model_replacement_sends_exactly_its_plan_and_shows_the_outage(applied, ksb, client, tmp_path):
    from testbed.tiny_model import build_tiny_cross_encoder

    other = build_tiny_cross_encoder(tmp_path / "other-model", seed=7)
    applied.model_path = other
    plan, entries = apply_and_log(applied, ksb, client)
    changes = {c.key: c for c in plan.changes if c.action != "noop"}
    assert {k: c.action for k, c in changes.items()} == {f"trained_model/{MODEL_ID}": "replace",
                                                         f"inference_endpoint/{ENDPOINT}": "replace"}
    outage = [h.message for h in changes[f"inference_endpoint/{ENDPOINT}"].hazards]
    assert outage and "unavailable" in outage[0]
    assert_sent_exactly(plan, entries)


def test_a_destroy_sends_exactly_its_plan(applied, ksb, client):
    ctx = applied.context(client, allow_data_loss=True)
    plan = make_plan(applied.resources(), ctx, destroy=True)
    seq = ksb.log.last_seq
    apply_saved(plan, ctx, command="pytest")
    assert {c.action for c in plan.changes} == {"delete"}
    assert_sent_exactly(plan, ksb.log.entries(seq))


# ---- saved plans ---------------------------------------------------------------------------------------------------
def save_plan(stack, client, path, **options):
    plan = make_plan(stack.resources(), stack.context(client, **options))
    save(plan, path, target="sandbox", folders=[])
    return plan


def test_a_saved_plan_applied_later_sends_exactly_its_operations_and_only_once(applied, ksb, client, tmp_path):
    applied.extra_vars = {"MOVIES_REPLICAS": "1"}
    plan = save_plan(applied, client, tmp_path / "plan.json")
    applied.extra_vars = {}  # the manifests are not rendered again: the saved plan is what runs
    seq = ksb.log.last_seq
    apply_file(tmp_path / "plan.json", applied.context(client), target="sandbox")
    assert_sent_exactly(plan, ksb.log.entries(seq))
    settings = client.indices.get_settings(index=INDEX, flat_settings=True).body
    assert next(iter(settings.values()))["settings"]["index.number_of_replicas"] == "1"
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="no longer matches the cluster"):
        apply_file(tmp_path / "plan.json", applied.context(client), target="sandbox")
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []


def _index_setting_changed(stack, client, tmp_path):
    client.indices.put_settings(index=INDEX, settings={"index.refresh_interval": "7s"})


def _model_deleted(stack, client, tmp_path):
    client.ml.delete_trained_model(model_id=MODEL_ID, force=True)


@pytest.mark.parametrize("change_cluster", [_index_setting_changed, _model_deleted])
def test_a_saved_plan_is_refused_with_zero_writes_when_its_live_state_moved(applied, ksb, client, tmp_path,
                                                                            change_cluster):
    applied.extra_vars = {"RERANK_NUM_ALLOCATIONS": "2", "MOVIES_REPLICAS": "1"}
    save_plan(applied, client, tmp_path / "plan.json")
    change_cluster(applied, client, tmp_path)
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="no longer matches the cluster|changed since the plan"):
        apply_file(tmp_path / "plan.json", applied.context(client), target="sandbox")
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []


def test_a_saved_plan_is_refused_after_another_stacks_apply(applied, ksb, client, tmp_path):
    from provisioning import converge
    from provisioning.model import Resource, SourceLocation
    from testbed.example_stack import ExampleStack

    extra = Resource("index", "extra", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
                     SourceLocation("manifests/extra.yaml", 1))
    plan = make_plan(applied.resources() + [extra], applied.context(client))
    save(plan, tmp_path / "plan.json", target="sandbox", folders=[])
    other = ExampleStack(model_path=applied.model_path, artifacts=applied.artifacts, workdir=applied.workdir,
                         stack="someone-else")
    converge([extra], other.context(client), command="pytest other stack")  # it now owns index `extra`
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="index/extra now exists since the plan was made"):
        apply_file(tmp_path / "plan.json", applied.context(client), target="sandbox")
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []


def test_a_saved_plan_is_refused_after_a_manifest_edit(applied, ksb, client, tmp_path):
    folder = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, folder)
    plan = make_plan(applied.resources(), applied.context(client))
    save(plan, tmp_path / "plan.json", target="sandbox", folders=[folder])
    edited = folder / "movies.yaml.j2"
    edited.write_text(edited.read_text().replace("plot: {type: text}", "plot: {type: text, norms: false}"))
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="manifest files .* changed"):
        apply_file(tmp_path / "plan.json", applied.context(client), target="sandbox")
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []


def test_a_saved_plan_is_refused_on_another_cluster(applied, ksb, client, tmp_path):
    from sandbox.server import Sandbox

    applied.extra_vars = {"MOVIES_REPLICAS": "1"}
    save_plan(applied, client, tmp_path / "plan.json")
    other = Sandbox().start()
    try:
        other_client = connect(other.url)
        applied.apply(other_client)  # the same stack, converged on another cluster
        seq = other.log.last_seq
        with pytest.raises(Refused, match="not the one the plan was made against"):
            apply_file(tmp_path / "plan.json", applied.context(other_client), target="sandbox")
        assert [e for e in other.log.entries(seq) if e["write"]] == []
    finally:
        other.stop()


def test_a_plan_file_holds_the_operations_and_what_it_rests_on(applied, client, tmp_path):
    applied.extra_vars = {"MOVIES_SHARDS": "2"}
    save_plan(applied, client, tmp_path / "plan.json")
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["format"] == "es-stack-plan" and data["format_version"] == 1 and data["stack"] == STACK
    assert data["cluster"]["ledger_id"] and data["manifests"]["rendered_hash"].startswith("sha256:")
    change = next(c for c in data["changes"] if c["key"] == "index/movies")
    assert change["action"] == "replace" and change["fingerprint"]
    assert [op.get("name") or f"{op['method']} {op['path']}" for op in change["operations"]] == [
        "PUT /movies-000002", "reindex_and_count", "POST /_aliases", "DELETE /movies-000001", "record_ownership"]
    assert data["artifacts"][f"trained_model/{MODEL_ID}"]["revision"].startswith("sha256:")


# ---- destructive changes are planned, shown, gated ------------------------------------------------------------
def _without(stack, tmp_path, kinds=(), drop_doc=None):
    """The example manifests minus some resources (by kind/name) or one film, as a new manifests folder."""
    from provisioning import load_manifests

    resources = [r for r in stack.resources() if r.key not in kinds and not (
        r.kind == "check" and any(k.startswith(("documents", "index")) for k in kinds))]
    if drop_doc:
        data = json.loads((MANIFESTS / "data" / "movies.json").read_text())
        path = tmp_path / "movies.json"
        path.write_text(json.dumps([m for m in data if m["id"] != drop_doc]))
        for r in resources:
            if r.kind == "documents":
                r.spec = {**r.spec, "source": str(path)}
    assert load_manifests  # the resources are the loader's own, edited as a manifest edit would
    return resources


@pytest.mark.parametrize("removal, loss", [
    (dict(kinds=("index/movies", "documents/movies-seed")), "holds 25 documents"),
    (dict(drop_doc="fargo-1996"), "removes 1 documents from movies: fargo-1996"),
    (dict(kinds=("documents/movies-seed",)), "removes 25 documents from movies"),
])
def test_data_loss_is_planned_shown_and_refused_without_the_flag(applied, ksb, client, tmp_path, removal, loss):
    resources = _without(applied, tmp_path, **removal)
    plan = make_plan(resources, applied.context(client))
    assert plan.has_changes  # --detailed-exitcode: 2
    losses = [h.message for _, h in plan.hazards if h.kind == "data_loss"]
    assert any(loss in m for m in losses), losses
    assert any(loss in h["message"] for h in plan_to_dict(plan)["hazards"])
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="--allow-data-loss"):
        apply_saved(plan, applied.context(client), command="pytest")
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []
    ctx = applied.context(client, allow_data_loss=True)
    apply_saved(make_plan(resources, ctx), ctx, command="pytest")
    if "drop_doc" in removal:
        assert "fargo-1996" not in stored_ids(client) and len(stored_ids(client)) == 24
    elif removal["kinds"] == ("documents/movies-seed",):
        assert stored_ids(client) == []
    else:
        assert not client.indices.exists_alias(name=INDEX)


# ---- identity by content, ownership ----------------------------------------------------------------------------
def test_the_same_model_files_at_another_path_plan_no_change(applied, client, tmp_path):
    copy = tmp_path / "model-copy"
    shutil.copytree(applied.model_path, copy)
    applied.model_path = copy
    plan = make_plan(applied.resources(), applied.context(client))
    assert not plan.has_changes, [(c.key, c.action, c.diffs) for c in plan.changes if c.action != "noop"]


def test_another_stacks_objects_are_refused_at_plan_time_naming_the_owner(applied, ksb, client):
    from testbed.example_stack import ExampleStack

    other = ExampleStack(model_path=applied.model_path, artifacts=applied.artifacts, workdir=applied.workdir,
                         stack="renamed")
    with pytest.raises(Refused) as refused:
        other.plan(client)
    message = str(refused.value)
    for key in (f"trained_model/{MODEL_ID}", f"inference_endpoint/{ENDPOINT}", "index/movies"):
        assert f"{key} (" in message and f"owned by stack {STACK!r}" in message.split(key, 1)[1].split("\n")[0]


def _foreign_index_in_place(client):
    """Someone deletes the stack's physical index by hand and creates a concrete index under the alias's name."""
    client.indices.delete(index="movies-000001")
    client.indices.create(index=INDEX, mappings={"properties": {"x": {"type": "keyword"}}})
    client.index(index=INDEX, id="theirs", document={"x": "keep me"}, refresh=True)


@pytest.mark.parametrize("allow_data_loss", [False, True])
def test_destroy_refuses_a_foreign_object_under_an_owned_name(applied, ksb, client, allow_data_loss):
    _foreign_index_in_place(client)
    ctx = applied.context(client, allow_data_loss=allow_data_loss)
    seq = ksb.log.last_seq
    with pytest.raises(Refused, match="index/movies: destroy, but the index now named movies is not the one"):
        make_plan(applied.resources(), ctx, destroy=True)
    assert [e for e in ksb.log.entries(seq) if e["write"]] == []
    assert client.get(index=INDEX, id="theirs")["_source"] == {"x": "keep me"}


@pytest.mark.parametrize("allow_data_loss", [False, True])
def test_removal_refuses_a_foreign_object_under_an_owned_name(applied, ksb, client, tmp_path, allow_data_loss):
    _foreign_index_in_place(client)
    resources = _without(applied, tmp_path, kinds=("index/movies", "documents/movies-seed"))
    with pytest.raises(Refused, match="no longer declared in the manifests, but the index now named movies"):
        make_plan(resources, applied.context(client, allow_data_loss=allow_data_loss))
    assert client.get(index=INDEX, id="theirs")["_source"] == {"x": "keep me"}
