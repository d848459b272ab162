"""The Invoke tasks as a pipeline runs them (subprocess, no terminal): exit codes, guards, no secret output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).parent / "invoke")
CONNECTION_VARS = ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ELASTICSEARCH_URL", "ELASTICSEARCH_USERNAME",
                   "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT")

MANIFEST = """\
kind: index
name: notes
spec:
  settings: {number_of_shards: 1, number_of_replicas: {{ replicas }}}
  mappings: {properties: {text: {type: text}}}
"""


def run(*args, env=None, tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARS}
    environ.update({"ES_STACK_SANDBOX_STATE": str(tmp_path / "state.json")}, **(env or {}))
    return subprocess.run([INVOKE, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def manifests(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "notes.yaml.j2").write_text(MANIFEST)
    return str(folder)


def test_no_cluster_configured_is_an_error_not_a_sandbox(tmp_path, manifests):
    result = run("plan", "--manifests", manifests, "--var", "replicas=0", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "ELASTICSEARCH_URL" in result.stderr and "--sandbox" in result.stderr
    assert not (tmp_path / "state.json").exists()


def test_plan_apply_plan_with_exit_codes_and_yes_guard(tmp_path, manifests):
    common = ["--manifests", manifests, "--var", "replicas=0", "--sandbox", "--stack", "ci"]
    result = run("plan", *common, "--detailed-exitcode", tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "+ index/notes" in result.stdout and "Plan: 1 to create" in result.stdout
    assert "local sandbox" in result.stderr  # says it is not a real cluster

    refused = run("apply", *common, tmp_path=tmp_path)
    assert refused.returncode == 1 and "--yes" in refused.stderr

    applied = run("apply", *common, "--yes", tmp_path=tmp_path)
    assert applied.returncode == 0, applied.stderr
    again = run("plan", *common, "--detailed-exitcode", "--json", tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["has_changes"] is False


def test_manifest_error_names_file_and_line(tmp_path, manifests):
    Path(manifests, "bad.yaml").write_text("kind: index\nname: bad\nspec:\n  setings: {}\n")
    result = run("validate", "--manifests", manifests, "--var", "replicas=0", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "bad.yaml:4" in result.stderr


def test_secrets_are_never_printed(tmp_path, manifests):
    secret = "s3cr3t-password-value"
    result = run("plan", "--manifests", manifests, "--var", "replicas=0", tmp_path=tmp_path,
                 env={"ELASTICSEARCH_URL": "http://127.0.0.1:9", "ELASTICSEARCH_USERNAME": "u",
                      "ELASTICSEARCH_PASSWORD": secret})
    assert result.returncode != 0
    assert secret not in result.stdout + result.stderr


def test_stale_lock_is_reported_and_broken_with_unlock_force(tmp_path, manifests):
    from elasticsearch import Elasticsearch

    from provisioning import Reporter, make_context
    from sandbox.server import Sandbox

    state = tmp_path / "state.json"
    server = Sandbox(state_file=state).start()  # the same state file the tasks' --sandbox uses
    try:
        ctx = make_context(Elasticsearch(server.url), stack="ci", reporter=Reporter(quiet=True))
        ctx.ledger.acquire("invoke apply (killed run)")
    finally:
        server.stop()
    common = ["--manifests", manifests, "--var", "replicas=0", "--sandbox", "--stack", "ci"]
    refused = run("apply", *common, "--yes", tmp_path=tmp_path)
    assert refused.returncode == 1
    assert "invoke apply (killed run)" in refused.stderr and "invoke unlock --force --stack ci" in refused.stderr
    shown = run("unlock", *common, tmp_path=tmp_path)
    assert shown.returncode == 1 and "killed run" in shown.stderr and "lease until" in shown.stderr
    broken = run("unlock", *common, "--force", tmp_path=tmp_path)
    assert broken.returncode == 0 and "broke the lock" in broken.stdout
    assert run("apply", *common, "--yes", tmp_path=tmp_path).returncode == 0


def test_a_dead_runs_expired_lock_is_taken_over_by_the_next_apply(tmp_path, manifests, monkeypatch):
    from elasticsearch import Elasticsearch

    from provisioning import Reporter, make_context
    from sandbox.server import Sandbox

    monkeypatch.setenv("ES_STACK_LOCK_LEASE", "0.3")
    server = Sandbox(state_file=tmp_path / "state.json").start()
    try:
        ledger = make_context(Elasticsearch(server.url), stack="ci", reporter=Reporter(quiet=True)).ledger
        ledger.acquire("invoke apply (killed run)")  # the lease comes from ES_STACK_LOCK_LEASE
        ledger.stack_lock.stop_renewing()  # ... and the run dies
        doc = ledger.client.get(index="es-stack-ledger", id="ci:lock")["_source"]
        assert doc["lease_seconds"] == 0.3
        deadline = time.monotonic() + 10
        while not ledger.lock_expired(doc):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        server.stop()
    common = ["--manifests", manifests, "--var", "replicas=0", "--sandbox", "--stack", "ci"]
    shown = run("unlock", *common, tmp_path=tmp_path)
    assert shown.returncode == 1 and "EXPIRED" in shown.stderr
    applied = run("apply", *common, "--yes", tmp_path=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "took over the expired stack lock" in applied.stderr and "invoke apply (killed run)" in applied.stderr
    assert "is not locked" in run("unlock", *common, tmp_path=tmp_path).stdout
