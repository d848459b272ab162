"""Issue 12: adopt what already exists. The tutorial built by hand exactly as Elastic's tutorial does it (the movies
index created by a bulk request, the model uploaded and started by eland under --es-model-id's id, the endpoint
created with the client), then `invoke import --adopt`, `invoke plan`, `invoke apply` against that sandbox: only
ledger and lock writes; then later changes plan normally, a replacement migrating the concrete index behind an alias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from elasticsearch import helpers

from testbed.example_stack import LEDGER, MOVIES

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
MODEL_ID = "cross-encoder__ms-marco-minilm-l-6-v2"  # eland_import_hub_model's id for the tutorial's hub model
ENDPOINT = "my-msmarco-minilm-model"
STACK = "tutorial"
KEEP = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR", "SYSTEMROOT")


def invoke(url, *args, stack=STACK):
    environ = {k: v for k, v in os.environ.items() if k in KEEP}
    environ.update({"ELASTICSEARCH_URL": url, "ES_STACK_NAME": stack, "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": str(ROOT)})
    return subprocess.run([INVOKE, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def build_the_tutorial_by_hand(es, tmp_path):
    """Steps 3 to 5 of the tutorial, as a user runs them: helpers.bulk into `movies` (auto-created, dynamic
    mapping), eland's upload with the model id eland_import_hub_model derives and --start, then the endpoint."""
    from eland.ml.pytorch import PyTorchModel

    from testbed.tiny_model import traced_tiny_cross_encoder

    movies = json.loads(MOVIES.read_text(encoding="utf-8"))
    helpers.bulk(es, [{"_index": "movies", "_source": doc} for doc in movies], refresh=True)
    traced = traced_tiny_cross_encoder()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(traced.config))
    model = PyTorchModel(es, MODEL_ID)  # what eland_import_hub_model --es-model-id does after tracing
    model.import_model(model_path=str(traced.model_path), config_path=str(config_path),
                       vocab_path=str(traced.vocab_path))
    model.start()  # --start
    es.inference.put(task_type="rerank", inference_id=ENDPOINT, inference_config={
        "service": "elasticsearch",
        "service_settings": {"model_id": MODEL_ID, "num_allocations": 1, "num_threads": 1}})
    return len(movies)


def writes(sandbox, since):
    return [(e["method"], e["path"]) for e in sandbox.log.entries(since) if e["write"]]


def read_manifest(folder, kind, name):
    return yaml.safe_load((folder / f"{kind}.{name}.yaml").read_text())


def write_manifest(folder, kind, name, document):
    (folder / f"{kind}.{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.timeout(600)
def test_import_adopt_then_change_and_migrate(sandbox, es, tmp_path):
    count = build_the_tutorial_by_hand(es, tmp_path)
    folder = tmp_path / "imported"

    # without --adopt: manifests, and the plan refuses (the refusal stays without the mark)
    plain = invoke(sandbox.url, "import", "--out", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr
    refused = invoke(sandbox.url, "plan", "--manifests", str(tmp_path / "plain"))
    assert refused.returncode == 1 and "adopt: true" in refused.stderr, refused.stderr

    result = invoke(sandbox.url, "import", "--out", str(folder), "--adopt")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "index.movies.yaml", f"inference_endpoint.{ENDPOINT}.yaml", f"trained_model.{MODEL_ID}.yaml"]
    assert read_manifest(folder, "trained_model", MODEL_ID)["adopt"] is True

    plan = invoke(sandbox.url, "plan", "--manifests", str(folder), "--json", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stderr
    changes = json.loads(plan.stdout)["changes"]
    assert {c["key"]: c["action"] for c in changes} == {
        "index/movies": "adopt", f"inference_endpoint/{ENDPOINT}": "adopt", f"trained_model/{MODEL_ID}": "adopt"}
    assert all(c["diffs"] == [] for c in changes), changes
    model_change = next(c for c in changes if c["kind"] == "trained_model")
    assert "UNVERIFIED" in model_change["reason"]
    text = invoke(sandbox.url, "plan", "--manifests", str(folder))
    assert f"<= trained_model/{MODEL_ID}" in text.stdout and "3 to adopt" in text.stdout, text.stdout

    since = sandbox.log.entries()[-1]["seq"]
    applied = invoke(sandbox.url, "apply", "--manifests", str(folder), "--yes")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    touched = {path.split("/")[1] for _, path in writes(sandbox, since)}
    assert touched == {LEDGER}, writes(sandbox, since)  # only ledger and lock documents were written

    again = invoke(sandbox.url, "plan", "--manifests", str(folder), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    # another stack cannot adopt them: refused naming the owner
    other = invoke(sandbox.url, "plan", "--manifests", str(folder), stack="intruder")
    assert other.returncode == 1 and "owned by stack 'tutorial'" in other.stderr, other.stderr

    # a later change of num_allocations updates the endpoint in place
    endpoint = read_manifest(folder, "inference_endpoint", ENDPOINT)
    endpoint["spec"]["service_settings"]["num_allocations"] = 2
    write_manifest(folder, "inference_endpoint", ENDPOINT, endpoint)
    plan = invoke(sandbox.url, "plan", "--manifests", str(folder), "--json")
    actions = {c["key"]: c["action"] for c in json.loads(plan.stdout)["changes"]}
    assert actions[f"inference_endpoint/{ENDPOINT}"] == "update", plan.stdout
    applied = invoke(sandbox.url, "apply", "--manifests", str(folder), "--yes")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert es.inference.get(inference_id=ENDPOINT)["endpoints"][0]["service_settings"]["num_allocations"] == 2

    # a mapping change ES cannot make in place: the concrete index is migrated behind an alias, documents kept
    index = read_manifest(folder, "index", "movies")
    index["spec"]["mappings"]["properties"]["release_year"] = {"type": "integer"}
    write_manifest(folder, "index", "movies", index)
    plan = invoke(sandbox.url, "plan", "--manifests", str(folder), "--json", "--show-requests")
    change = next(c for c in json.loads(plan.stdout)["changes"] if c["key"] == "index/movies")
    assert change["action"] == "replace" and change["hazards"], change
    swap = [op for op in change["operations"] if op.get("path") == "/_aliases"]
    assert swap and swap[0]["body"]["actions"][0] == {"remove_index": {"index": "movies"}}
    applied = invoke(sandbox.url, "apply", "--manifests", str(folder), "--yes")
    assert applied.returncode == 0, applied.stderr + applied.stdout
    assert list(es.indices.get_alias(name="movies").body) == ["movies-000001"]
    assert es.count(index="movies")["count"] == count
    final = invoke(sandbox.url, "plan", "--manifests", str(folder), "--detailed-exitcode")
    assert final.returncode == 0, final.stdout + final.stderr

    listed = invoke(sandbox.url, "stacks")
    assert listed.returncode == 0 and "tutorial: 3 resources" in listed.stdout, listed.stdout
