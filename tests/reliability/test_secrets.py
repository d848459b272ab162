"""Secrets never appear in any task's output, in --json plans, in logs or in error messages, including when a
request fails (issue 6, item 5).

Recognisable values are set for the cluster API key (the sandbox really requires it), an inference service API key
(a `cohere` rerank endpoint whose key is read from the environment; the sandbox stores it without calling out)
and a Hugging Face hub token. Every task runs through tasks.py as `invoke <task>` would run it; stdout, stderr and
every log record at DEBUG (root, so the `elasticsearch` and `elastic_transport` loggers too) are searched for each
value and its base64 form.

Not covered on purpose: the client's opt-in wire trace (a handler added to the non-propagating
`elastic_transport.node` logger) prints request bodies verbatim, so it shows the inference key sent in
PUT _inference; nothing in this tool turns it on.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil

import pytest
from invoke import Context, Exit

import tasks
from sandbox.server import Sandbox
from testbed.example_stack import MANIFESTS, ROOT

CLUSTER_KEY = "relClusterKey-7Qm2Zx9Lw4"
SERVICE_KEY = "relCohereKey-Vb83Kd02Jq"
ROTATED_KEY = "relCohereKeyRotated-Np51Ts7Gh"
HUB_TOKEN = "hf_relHubToken6Yc4Rt8Ue1"
SECRETS = (CLUSTER_KEY, SERVICE_KEY, ROTATED_KEY, HUB_TOKEN)
COHERE_ENDPOINT = """\
# A third-party rerank service: its API key comes from the environment at apply time, never from the manifest.
kind: inference_endpoint
name: cohere-rerank
spec:
  task_type: rerank
  service: cohere
  service_settings: {model_id: rerank-english-v3.0}
  secrets:
    api_key: {env: COHERE_API_KEY}
"""
HUB_MODEL = """\
kind: trained_model
spec:
  task_type: text_similarity
  source: {hub: cross-encoder/ms-marco-MiniLM-L-6-v2, token_env: HF_TOKEN}
"""


def forms(secret: str) -> list[str]:
    encoded = base64.b64encode(secret.encode()).decode()
    return [secret, encoded, encoded.rstrip("=")]


@pytest.fixture(scope="module")
def auth_sandbox():
    server = Sandbox(api_keys=(CLUSTER_KEY,)).start()
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path, stack, monkeypatch, auth_sandbox):
    """The example stack plus the cohere endpoint, in a project folder of its own, with every secret set."""
    auth_sandbox.reset()
    folder = tmp_path / "project"
    shutil.copytree(MANIFESTS, folder / "manifests")
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "manifests" / "zz-cohere.yaml").write_text(COHERE_ENDPOINT)
    monkeypatch.chdir(folder)
    for name in ("ELASTIC_CLOUD_ID", "ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD", "ES_STACK_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ELASTICSEARCH_URL", auth_sandbox.url)
    monkeypatch.setenv("ELASTIC_API_KEY", CLUSTER_KEY)
    monkeypatch.setenv("COHERE_API_KEY", SERVICE_KEY)
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never reach the hub
    return folder


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("elasticsearch", "elastic_transport", "provisioning", "urllib3", "eland"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


class Runner:
    """Runs tasks like `invoke <task>` and keeps everything they printed or raised."""

    def __init__(self, capsys, model_path):
        self.capsys, self.model_path, self.transcript = capsys, model_path, []

    def __call__(self, task, *, expect_ok=True, **kwargs):
        variables = [f"RERANK_MODEL_PATH={self.model_path}"]
        offline = task in (tasks.render, tasks.validate)
        extra = {} if offline else {"stack": "secrets"}
        code, message = 0, ""
        try:
            task(Context(), manifests="manifests", var=variables, **extra, **kwargs)
        except Exit as exc:
            code, message = exc.code, str(exc.message or "")
        out, err = self.capsys.readouterr()
        self.transcript.append(f"$ {task.__name__} {kwargs}\n{out}\n{err}\n{message}")
        if expect_ok:
            assert code in (0, None), f"{task.__name__} failed: {message}\n{err}"
        else:
            assert code not in (0, None), f"{task.__name__} should have failed\n{out}\n{err}"
        return out, err, message


def assert_no_secret(*texts):
    leaks = []
    for text in texts:
        for secret in SECRETS:
            for form in forms(secret):
                at = text.find(form)
                if at >= 0:
                    leaks.append(f"{secret} (as {form!r}) in: ...{text[max(0, at - 200):at + 60]}...")
    assert leaks == [], "secret values found:\n" + "\n".join(leaks)


@pytest.mark.timeout(300)
def test_no_task_output_log_or_error_contains_a_secret(project, stack, auth_sandbox, capsys, everything_logged,
                                                       monkeypatch):
    run = Runner(capsys, stack.model_path)
    run(tasks.render)
    run(tasks.validate)
    out, _, _ = run(tasks.plan)
    assert "cohere-rerank" in out
    out, _, _ = run(tasks.plan, json=True)
    plan = json.loads(out)
    assert plan  # a real plan was printed (creates everything)
    run(tasks.apply, yes=True)
    stored = json.dumps(auth_sandbox.cluster.inference.dump())
    assert SERVICE_KEY in stored, "the key must really reach the cluster, or this test proves nothing"
    run(tasks.status)
    run(tasks.status, json=True)
    run(tasks.check)

    # rotating the key is planned (as a masked change) and applied; the plan never shows either value
    monkeypatch.setenv("COHERE_API_KEY", ROTATED_KEY)
    out, _, _ = run(tasks.plan, json=True)
    assert "secrets" in out
    # a failing request on the endpoint (ES answers 400), then a 500 on a fresh create
    auth_sandbox.faults = type(auth_sandbox.faults).from_dict(
        {"rules": [{"path": "^/_inference/", "method": "PUT", "status": 400}]})
    _, _, message = run(tasks.apply, yes=True, expect_ok=False)
    assert "cohere-rerank" in message and "400" in message
    auth_sandbox.faults = type(auth_sandbox.faults)()
    run(tasks.destroy, yes=True, allow_data_loss=True)
    auth_sandbox.faults = type(auth_sandbox.faults).from_dict(
        {"rules": [{"path": "^/_inference/", "method": "PUT", "status": 500}]})
    _, _, message = run(tasks.apply, yes=True, expect_ok=False)
    assert "500" in message
    auth_sandbox.faults = type(auth_sandbox.faults)()

    # a wrong cluster key: the 401 is reported without echoing the key that was refused
    monkeypatch.setenv("ELASTIC_API_KEY", CLUSTER_KEY + "-wrong")
    _, _, message = run(tasks.plan, expect_ok=False)
    assert "401" in message or "authenticat" in message.lower()
    monkeypatch.setenv("ELASTIC_API_KEY", CLUSTER_KEY)

    assert_no_secret(*run.transcript, everything_logged.text,
                     *(str(r.args) for r in everything_logged.records), *(r.getMessage() for r in
                                                                           everything_logged.records))
    assert CLUSTER_KEY + "-wrong" not in "\n".join(run.transcript) + everything_logged.text


@pytest.mark.timeout(120)
def test_a_hub_token_is_not_shown_when_the_model_download_fails(project, auth_sandbox, capsys, everything_logged):
    """A hub model with `token_env: HF_TOKEN` cannot be downloaded here (offline): apply fails, and neither the
    error nor the logs show the token."""
    shutil.rmtree(project / "manifests")
    (project / "manifests").mkdir()
    (project / "manifests" / "model.yaml").write_text(HUB_MODEL)
    run = Runner(capsys, "unused")
    out, _, _ = run(tasks.plan)
    assert "cross-encoder__ms-marco-minilm-l-6-v2" in out
    _, err, message = run(tasks.apply, yes=True, expect_ok=False)
    assert message
    assert_no_secret(*run.transcript, everything_logged.text, *(r.getMessage() for r in everything_logged.records))
