"""The trained_model kind against the sandbox (real client, real eland tracing of a tiny on-the-fly model)."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from provisioning import apply_saved, make_plan
from provisioning.context import Options, make_context
from provisioning.errors import ConfigError, ProvisioningError
from provisioning.kinds.trained_model import TrainedModelKind, eland_model_id
from provisioning.model import Resource, SourceLocation
from provisioning.model_import import deployment as dep
from provisioning.model_import.cache import ArtifactCache
from provisioning.model_import.importer import MANAGED_BY
from provisioning.model_import.upload import UploadInterrupted, definition_status, total_parts
from testbed.tiny_model import build_tiny_cross_encoder

KIND = TrainedModelKind()
DEFINITION = r"/_ml/trained_models/[^/]+/definition/"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def other_tiny(tmp_path_factory):
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-b", seed=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # shared: the tiny model is traced once per module


def make_ctx(client, cache_dir, **options):
    options = {"wait_timeout": 60, "upload_workers": 4, **options}
    ctx = make_context(client, stack="test", options=Options(cache_dir=cache_dir, **options))
    ctx.ledger.load()
    return ctx


def model(path, name="tiny-model", **spec) -> Resource:
    spec = {"task_type": "text_similarity", "source": {"path": str(path)}, **spec}
    return Resource("trained_model", name, spec, SourceLocation("manifests/models.yaml", 3))


def plan(ctx, resource):
    """The model's change in the engine's plan of this one resource."""
    return make_plan([resource], ctx).changes[0]


def apply(ctx, resource):
    """Plan and apply exactly that plan (the engine's path: lifecycle, operations, verification)."""
    made = make_plan([resource], ctx)
    if made.has_changes:
        apply_saved(made, ctx, command="pytest")
    return made.changes[0]


def requests(sandbox, method=None, path=r".*"):
    import re

    return [e for e in sandbox.log.entries() if (method is None or e["method"] == method)
            and re.search(path, e["path"])]


# ---- pure parts -------------------------------------------------------------------------------------------------
def test_default_name_is_elands_derivation():
    from eland.ml.pytorch.transformers import elasticsearch_model_id

    for hub in ("cross-encoder/ms-marco-MiniLM-L-6-v2", "BAAI/bge-reranker-base", "a b/C\\d", "/abs/path/Model"):
        assert eland_model_id(hub) == elasticsearch_model_id(hub)
    assert KIND.default_name({"source": {"hub": "cross-encoder/ms-marco-MiniLM-L-6-v2"}}) == \
        "cross-encoder__ms-marco-minilm-l-6-v2"


def test_validate_reports_problems_at_their_lines(tmp_path):
    resource = model(tmp_path / "missing", deployment={"priority": "low", "number_of_allocations": 2,
                                                      "adaptive_allocations": {"enabled": True}})
    resource.lines = {"spec.source.path": 7, "spec.deployment": 9}
    problems = KIND.validate(resource, {})
    messages = " | ".join(p.message for p in problems)
    assert "not a Hugging Face model directory" in messages
    assert "exclude each other" in messages and "low priority" in messages
    assert {p.line for p in problems} >= {7, 9}


def test_diff_compares_recorded_identity_without_tracing(tiny, tmp_path):
    resource = model(tiny)
    from provisioning.model_import.cache import ModelSource

    identity = ModelSource.from_spec(resource.spec).identity()
    live = {"config": {}, "recorded": dict(identity), "stack": "test", "deployments": {}}
    entry = {"upload_complete": True, "identity": identity}
    assert KIND.diff(resource, live, entry, None).action == "noop"
    assert KIND.diff(resource, None, None, None).action == "create"
    changed = dict(live, recorded={**identity, "revision": "sha256:other"})
    change = KIND.diff(resource, changed, entry, None)
    assert change.action == "replace" and [d.path for d in change.diffs] == ["revision"]
    assert change.diffs[0].forces_replacement
    retyped = KIND.diff(model(tiny, task_type="text_classification"), live, entry, None)
    assert retyped.action == "replace" and "task_type" in [d.path for d in retyped.diffs]
    unfinished = KIND.diff(resource, live, {"upload_complete": False, "identity": identity}, None)
    assert unfinished.action == "update" and "interrupted" in unfinished.reason
    # identity is the content, not the path: the same files elsewhere are the same model
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(tiny, copy)
    assert KIND.diff(model(copy), live, entry, None).action == "noop"


def test_deployment_diffs_split_in_place_and_restart():
    desired = dep.desired_deployment({"number_of_allocations": 2, "threads_per_allocation": 2}, "m")
    live = dep.live_deployment({"deployment_id": "m", "number_of_allocations": 1, "threads_per_allocation": 1,
                                "priority": "normal", "queue_capacity": 1024})
    in_place, restart = dep.compare(desired, live)
    assert [k for k, _, _ in in_place] == ["number_of_allocations"]
    assert [k for k, _, _ in restart] == ["threads_per_allocation"]
    adaptive = dep.desired_deployment({"adaptive_allocations": {"enabled": True, "min_number_of_allocations": 1,
                                                                "max_number_of_allocations": 4}}, "m")
    live_adaptive = dict(live, number_of_allocations=3, adaptive_allocations={
        "enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4})
    assert dep.compare(adaptive, live_adaptive) == ([], [])  # the live count moves under adaptive allocations


def test_capacity_problems_known_in_advance():
    assert "no machine learning capacity" in dep.capacity_problem({"total_ml_memory": "0b"})
    assert dep.capacity_problem({"total_ml_memory": "0b", "effective_max_model_memory_limit": "2gb"}) is None
    too_big = dep.capacity_problem({"total_ml_memory": "512mb"}, needed=dep.MEMORY_OVERHEAD + 400 * (1 << 20))
    assert too_big and "needs about 640 MB" in too_big
    assert dep.capacity_problem({"total_ml_memory": "4gb"}, needed=300 * (1 << 20)) is None
    assert dep.capacity_problem(None) is None


# ---- against the sandbox ------------------------------------------------------------------------------------------
def test_read_is_one_batched_request_pair_whatever_the_count(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    apply(ctx, model(tiny, name="tiny-a"))
    sandbox.log.clear()
    resources = [model(tiny, name=n) for n in ("tiny-a", "tiny-b", "tiny-c", "tiny")]
    live = KIND.read(ctx, resources, {})
    assert set(live) == {"tiny-a"}  # missing ids are no error, prefix matches (tiny-a for tiny*) are dropped
    assert [e["method"] for e in sandbox.log.entries()] == ["GET", "GET"]


def test_create_uploads_with_provenance_then_plans_no_change(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    resource = model(tiny)
    assert apply(ctx, resource).action == "create"
    config = es.ml.get_trained_models(model_id="tiny-model", include="definition_status")["trained_model_configs"][0]
    assert config["fully_defined"] is True
    meta = config["metadata"]
    assert meta["managed_by"] == MANAGED_BY and meta["stack"] == "test"
    record = meta["es_stack"]
    assert record["source"] == {"path": str(tiny)} and record["task_type"] == "text_similarity"
    assert record["revision"].startswith("sha256:") and len(record["sha256"]) == 64
    assert meta["per_deployment_memory_bytes"] > 0  # eland's own metadata is kept
    artifact = ArtifactCache(cache_dir).load(record["cache_key"])
    assert artifact is not None and artifact.sha256 == record["sha256"]
    parts = requests(sandbox, "PUT", DEFINITION)
    assert len(parts) == total_parts(artifact.size)
    assert requests(sandbox, "PUT", r"/vocabulary$")
    entry = make_ctx(es, cache_dir).ledger.entry("trained_model", "tiny-model")
    assert entry["upload_complete"] is True
    sandbox.log.clear()
    assert plan(make_ctx(es, cache_dir), resource).action == "noop"
    assert not requests(sandbox, "PUT")


def test_cached_artifact_is_not_traced_again(es, sandbox, tiny, cache_dir, monkeypatch):
    ctx = make_ctx(es, cache_dir)
    apply(ctx, model(tiny))
    es.ml.delete_trained_model(model_id="tiny-model", force=True)
    from provisioning.model_import import tracing

    def no_tracing(*args, **kwargs):
        raise AssertionError("the cached artifact should have been used")

    monkeypatch.setattr(tracing, "_load", no_tracing)
    ctx = make_ctx(es, cache_dir)
    assert apply(ctx, model(tiny)).action == "create"
    assert definition_status(es, "tiny-model")["fully_defined"] is True


def test_interrupted_upload_is_resumed_without_resending_stored_parts(sandbox, tiny, tmp_path):
    # a ~1.5 MB model: several parts, so the upload can be cut in the middle
    big = build_tiny_cross_encoder(tmp_path / "bigger", hidden_size=128, num_layers=2, num_heads=2,
                                   intermediate_size=256, vocab_size=2000)
    fragile = Elasticsearch(sandbox.url, max_retries=0, request_timeout=30)  # a crash, not a retried blip
    ctx = make_ctx(fragile, tmp_path / "cache", upload_workers=1)
    resource = model(big, name="bigger")
    sandbox.faults = type(sandbox.faults).from_dict(
        {"rules": [{"path": DEFINITION, "method": "PUT", "nth": 3, "drop": True}]})
    with pytest.raises(UploadInterrupted, match="half-defined"):
        apply(ctx, resource)
    assert definition_status(fragile, "bigger")["fully_defined"] is False
    stored_before = len([e for e in requests(sandbox, "PUT", DEFINITION) if e["status"] == 200])
    assert stored_before >= 2
    sandbox.faults = type(sandbox.faults)()
    sandbox.log.clear()
    ctx = make_ctx(fragile, tmp_path / "cache", upload_workers=4)
    change = apply(ctx, resource)
    assert change.action == "update" and "interrupted" in change.reason
    total = total_parts(ArtifactCache(tmp_path / "cache").load(change.live["recorded"]["cache_key"]).size)
    resent = requests(sandbox, "PUT", DEFINITION)
    assert len(resent) == total - stored_before  # the journal skipped what was acknowledged
    assert not requests(sandbox, "PUT", r"/_ml/trained_models/bigger$")  # the config was kept, not re-created
    assert definition_status(fragile, "bigger")["fully_defined"] is True
    assert plan(make_ctx(fragile, tmp_path / "cache"), resource).action == "noop"


def test_partial_upload_of_another_artifact_is_restarted_cleanly(es, sandbox, tiny, other_tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    apply(ctx, model(tiny))
    # simulate a half-defined model of a different artifact recorded under the same identity
    es.ml.delete_trained_model(model_id="tiny-model", force=True)
    from provisioning.model_import import importer

    prepared = importer.prepare(ctx, model(tiny))
    body = importer.config_body(ctx, prepared)
    body["metadata"]["es_stack"]["sha256"] = "0" * 64
    es.ml.put_trained_model(model_id="tiny-model", body=body)
    entry = ctx.ledger.entry("trained_model", "tiny-model")  # as a create records before its first part
    ctx.ledger.record("trained_model", "tiny-model", spec_hash=entry["spec_hash"], applied=entry["applied"],
                      **{**{k: v for k, v in entry.items() if k not in ("type", "stack", "kind", "name", "spec_hash",
                                                                         "applied", "updated_at")},
                         "upload_complete": False})
    sandbox.log.clear()
    change = apply(make_ctx(es, cache_dir), model(tiny))
    assert change.action == "update"
    assert requests(sandbox, "DELETE", r"/_ml/trained_models/tiny-model$")
    assert definition_status(es, "tiny-model")["fully_defined"] is True
    assert plan(make_ctx(es, cache_dir), model(tiny)).action == "noop"


def test_changed_source_replaces_the_model(es, sandbox, tiny, other_tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    apply(ctx, model(tiny))
    change = plan(make_ctx(es, cache_dir), model(other_tiny))
    # the same kind of source (a local folder): what differs is the content, not the path
    assert change.action == "replace" and {d.path for d in change.diffs} == {"revision"}
    sandbox.log.clear()
    apply(make_ctx(es, cache_dir), model(other_tiny))
    order = [(e["method"], e["path"]) for e in sandbox.log.entries() if e["method"] in ("PUT", "DELETE")
             and e["path"].startswith("/_ml/")]
    assert order[0] == ("DELETE", "/_ml/trained_models/tiny-model")
    assert ("PUT", "/_ml/trained_models/tiny-model") in order
    record = es.ml.get_trained_models(model_id="tiny-model")["trained_model_configs"][0]["metadata"]["es_stack"]
    assert record["source"] == {"path": str(other_tiny)}
    assert plan(make_ctx(es, cache_dir), model(other_tiny)).action == "noop"


def test_unsupported_task_type_fails_before_any_upload(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    with pytest.raises(ProvisioningError, match="cannot serve task type 'text_embedding'"):
        apply(ctx, model(tiny, name="wrong-task", task_type="text_embedding"))
    assert not requests(sandbox, "PUT", r"/_ml/")


def test_offline_hub_names_the_model_and_the_way_out(es, sandbox, cache_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    resource = Resource("trained_model", "cross-encoder__ms-marco-minilm-l-6-v2",
                        {"task_type": "text_similarity", "source": {"hub": "cross-encoder/ms-marco-MiniLM-L-6-v2"}},
                        SourceLocation("manifests/reranker.yaml", 5))
    with pytest.raises(ConfigError) as error:
        apply(make_ctx(es, cache_dir), resource)
    message = str(error.value)
    assert "cross-encoder/ms-marco-MiniLM-L-6-v2" in message and "spec.source.path" in message
    assert not requests(sandbox, "PUT", r"/_ml/")


def test_missing_token_variable_is_named_not_leaked(es, sandbox, cache_dir):
    resource = Resource("trained_model", "private", {"task_type": "text_similarity",
                                                     "source": {"hub": "org/private", "token_env": "MY_HF_TOKEN"}},
                        SourceLocation("m.yaml"))
    ctx = make_ctx(es, cache_dir)
    ctx.environ = {}
    with pytest.raises(ConfigError, match="MY_HF_TOKEN"):
        apply(ctx, resource)


def test_deployment_started_waited_probed_then_updated_in_place_or_restarted(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    resource = model(tiny, deployment={"deployment_id": "tiny-dep", "number_of_allocations": 1})
    assert apply(ctx, resource).action == "create"
    stats = es.ml.get_trained_models_stats(model_id="tiny-model")["trained_model_stats"]
    assert [s["deployment_stats"]["state"] for s in stats] == ["started"]
    assert requests(sandbox, "POST", r"/tiny-dep/_infer$")  # the readiness probe ran a real inference
    assert plan(make_ctx(es, cache_dir), resource).action == "noop"

    more = model(tiny, deployment={"deployment_id": "tiny-dep", "number_of_allocations": 2})
    sandbox.log.clear()
    change = apply(make_ctx(es, cache_dir), more)
    assert change.action == "update" and "in place" in change.reason
    assert requests(sandbox, "POST", r"/deployment/_update$") and not requests(sandbox, "POST", r"/_stop$")
    assert plan(make_ctx(es, cache_dir), more).action == "noop"

    threads = model(tiny, deployment={"deployment_id": "tiny-dep", "number_of_allocations": 2,
                                      "threads_per_allocation": 2})
    sandbox.log.clear()
    change = apply(make_ctx(es, cache_dir), threads)
    assert change.action == "update" and "deployment.threads_per_allocation" in [d.path for d in change.diffs]
    posts = [e["path"].rsplit("/", 1)[-1] for e in requests(sandbox, "POST", r"/deployment/_(stop|start)$")]
    assert posts == ["_stop", "_start"]
    assert plan(make_ctx(es, cache_dir), threads).action == "noop"

    sandbox.log.clear()
    change = apply(make_ctx(es, cache_dir), model(tiny))  # deployment removed from the manifest
    assert change.action == "update" and requests(sandbox, "POST", r"tiny-dep/deployment/_stop$")
    assert plan(make_ctx(es, cache_dir), model(tiny)).action == "noop"


def test_delete_force_stops_and_deletes_only_owned(es, sandbox, tiny, cache_dir):
    ctx = make_ctx(es, cache_dir)
    apply(ctx, model(tiny))
    ctx = make_ctx(es, cache_dir)
    apply_saved(make_plan([], ctx), ctx, command="pytest")  # no longer declared: deleted
    assert definition_status(es, "tiny-model") is None
    assert make_ctx(es, cache_dir).ledger.entry("trained_model", "tiny-model") is None
    assert requests(sandbox, "DELETE", r"/_ml/trained_models/tiny-model$")[-1]["query"] == "force=true"


def test_tracing_and_uploading_show_progress(es, sandbox, tiny, tmp_path):
    from provisioning.context import Progress, Reporter

    class Recording(Reporter):
        def __init__(self):
            super().__init__(quiet=True)
            self.bars: list[tuple[str, int | None]] = []

        def progress(self, description, total=None):
            self.bars.append((description, total))
            return Progress()

    ctx = make_ctx(es, tmp_path / "fresh-cache")  # nothing cached: this apply traces
    ctx.reporter = Recording()
    apply(ctx, model(tiny))
    assert ctx.reporter.bars == [("tracing trained_model/tiny-model", 3), ("uploading tiny-model", 1)]
    assert any("uploaded 1 of 1 definition parts" in m for m in ctx.reporter.messages)


def test_no_ml_capacity_or_too_small_cluster_is_refused_before_any_upload(es, sandbox, tiny, cache_dir):
    # the sandbox's GET _ml/info answers {"limits": {"total_ml_memory": "0"}} like a cluster without ML nodes
    sandbox.cluster.ml.ml_memory_bytes = 0
    ctx = make_ctx(es, cache_dir)
    with pytest.raises(ProvisioningError, match="no machine learning capacity"):
        plan(ctx, model(tiny))  # refused at plan time
    sandbox.cluster.ml.ml_memory_bytes = 100 * 1024 * 1024  # less than ES's 240 MB overhead alone
    with pytest.raises(ProvisioningError, match=r"needs about \d+ MB of ML memory.*has 100 MB"):
        apply(make_ctx(es, cache_dir), model(tiny))  # known once traced: before the first upload
    assert not requests(sandbox, "PUT", r"/_ml/")


def test_a_model_eland_cannot_load_fails_clearly_before_any_upload(es, sandbox, tiny, tmp_path):
    import shutil

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(tiny, broken)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(ProvisioningError, match="eland cannot trace this model for task type 'text_similarity'"):
        apply(make_ctx(es, tmp_path / "cache"), model(broken, name="broken"))
    assert not requests(sandbox, "PUT", r"/_ml/")
