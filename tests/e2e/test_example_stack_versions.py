"""Issue 16: the example stack's whole life on the sandbox as Elasticsearch 8.19 and as 9.x, through the engine's
own connect() (REST compatibility negotiated on first contact): apply, a no-op plan, the checks, an index
replacement, a model replacement, destroy, and bad input that writes nothing. Plus the plan-time refusal of a
feature the cluster's version does not have, naming the version that added it.
"""

from __future__ import annotations

import pytest
from invoke import Context, Exit

from provisioning import compat, make_plan, run_checks
from provisioning.errors import Refused
from sandbox.server import Sandbox
from testbed.example_stack import ENDPOINT, INDEX, MODEL_ID, ExampleStack, clear_stack_variables, connect, movie_ids

VERSIONS = ["8.19.0", "9.1.0"]


@pytest.fixture(scope="module", params=VERSIONS)
def server(request):
    server = Sandbox(version=request.param).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from testbed.tiny_model import build_tiny_cross_encoder

    base = tmp_path_factory.mktemp("versions-models")
    return {"first": build_tiny_cross_encoder(base / "first"),
            "other": build_tiny_cross_encoder(base / "other", seed=7),
            "artifacts": base}


@pytest.fixture
def stack(server, tiny, tmp_path, monkeypatch):
    server.reset()
    clear_stack_variables(monkeypatch)
    (tmp_path / "work").mkdir()
    artifacts = tiny["artifacts"] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return ExampleStack(model_path=tiny["first"], artifacts=artifacts, workdir=tmp_path / "work", stack="versions")


def actions(plan) -> dict[str, str]:
    return {c.key: c.action for c in plan.changes if c.action != "noop"}


def test_the_example_stack_lives_and_dies_on_8_19_and_9(server, stack, tiny):
    client = connect(server.url)
    version = server.cluster.version

    first = stack.plan(client)
    assert compat.negotiation(client).version == version
    assert set(actions(first).values()) == {"create"}
    result = stack.apply(client)
    assert result.applied and not result.checks_failed, [c for c in result.checks if not c.ok]
    assert {h["_id"] for h in client.search(index=INDEX, size=100)["hits"]["hits"]} == movie_ids()

    assert not stack.plan(client).has_changes  # a second apply would do nothing
    checks = run_checks(stack.context(client), stack.resources(), manual=True)
    assert checks and all(c.ok for c in checks)

    # index replacement: the shard count cannot change in place
    stack.extra_vars = {"MOVIES_SHARDS": "2"}
    assert actions(stack.plan(client)).get(f"index/{INDEX}") == "replace"
    result = stack.apply(client, allow_data_loss=True)
    assert result.applied and not result.checks_failed
    physical = next(iter(client.indices.get_alias(name=INDEX)))
    assert client.indices.get_settings(index=physical)[physical]["settings"]["index"]["number_of_shards"] == "2"
    assert client.count(index=INDEX)["count"] == len(movie_ids())
    assert not stack.plan(client).has_changes

    # model replacement: another model replaces it, and the endpoint serving it, in order
    stack.model_path = tiny["other"]
    assert actions(stack.plan(client)) == {f"trained_model/{MODEL_ID}": "replace",
                                           f"inference_endpoint/{ENDPOINT}": "replace"}
    result = stack.apply(client)
    assert result.applied and not result.checks_failed
    assert not stack.plan(client).has_changes

    result = stack.destroy(client)
    assert result.applied
    assert not client.indices.exists_alias(name=INDEX)
    assert client.options(ignore_status=404).ml.get_trained_models(model_id=MODEL_ID).meta.status == 404


BAD_CASES = ["jinja_undefined_variable", "documents_field_not_in_strict_mapping", "dependency_cycle_explicit"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_writes_nothing_on_8_19_and_9(case, server, monkeypatch):
    import tasks
    from tests.reliability.test_bad_input_writes_nothing import CASES_DIR, expected_of, problem_line

    server.reset()
    folder = CASES_DIR / case
    monkeypatch.chdir(folder)
    monkeypatch.setenv("ELASTICSEARCH_URL", server.url)
    for name in ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ES_STACK_NAME"):
        monkeypatch.delenv(name, raising=False)
    seq = server.log.last_seq
    with pytest.raises(Exit) as caught:
        tasks.apply(Context(), manifests=str(folder / "manifests"), yes=True)
    message = str(caught.value.message or "")
    assert caught.value.code not in (0, None) and problem_line(message, expected_of(case)), message
    assert [e for e in server.log.entries(seq) if e["write"]] == []


# A feature 9.1 added: the `recursive` chunking strategy of inference endpoints (provisioning/versions.py).
RECURSIVE_ENDPOINT = """\
kind: inference_endpoint
name: recursive-embeddings
spec:
  task_type: text_embedding
  service: openai
  service_settings:
    model_id: text-embedding-3-small
  secrets:
    api_key: {env: OPENAI_API_KEY}
  chunking_settings:
    strategy: recursive
    max_chunk_size: 200
    separator_group: plaintext
"""


def test_a_feature_the_clusters_version_lacks_is_refused_at_plan_time_naming_the_version(server, tmp_path,
                                                                                        monkeypatch):
    from provisioning import Options, Reporter, load_manifests, make_context

    server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "endpoint.yaml").write_text(RECURSIVE_ENDPOINT)
    resources = load_manifests(tmp_path / "manifests", env_file_dir=tmp_path)
    client = connect(server.url)
    ctx = make_context(client, stack="versions", options=Options(cache_dir=tmp_path / "cache"),
                       reporter=Reporter(quiet=True))
    seq = server.log.last_seq
    if server.cluster.version.startswith("8."):
        with pytest.raises(Refused) as caught:
            make_plan(resources, ctx)
        message = str(caught.value)
        assert "inference_endpoint/recursive-embeddings" in message and "endpoint.yaml:1" in message
        assert "the `none` and `recursive` chunking strategies needs Elasticsearch 9.1.0 or later" in message
        assert "the cluster runs 8.19.0" in message
        assert [e for e in server.log.entries(seq) if e["write"]] == []
    else:
        plan = make_plan(resources, ctx)
        assert actions(plan) == {"inference_endpoint/recursive-embeddings": "create"}


@pytest.mark.timeout(300)
def test_the_quick_start_runs_unchanged_on_the_sandbox_as_8_19(tmp_path):
    """`invoke apply --sandbox --es-version 8.19.0 --yes` prints the tutorial's three searches; a plan after it
    has nothing to do."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    invoke = str(Path(sys.executable).parent / "invoke")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTIC", "ES_STACK"))}
    environ["ES_STACK_SANDBOX_STATE"] = str(tmp_path / "sandbox-state.json")

    def run(*args):
        return subprocess.run([invoke, *args, "--sandbox", "--es-version", "8.19.0"], cwd=root, env=environ,
                              capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)

    applied = run("apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Elasticsearch 8.19.0" in applied.stderr
    for check in ("tutorial-1-query-string: passed", "tutorial-2-multi-match: passed",
                  "tutorial-3-reranked: passed"):
        assert check in applied.stdout, applied.stdout
    assert (tmp_path / "sandbox-state-8.19.0.json").is_file()
    planned = run("plan", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
