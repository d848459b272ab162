"""Issue 13: output a pipeline can rely on. Each command runs as `es-stack ...` (a subprocess in a project folder
of its own, with an in-process --sandbox or a sandbox of the test), without a terminal unless said otherwise."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from xml.etree import ElementTree as ET

import pytest
from elasticsearch import Elasticsearch

from sandbox.server import Sandbox
from tests.cli_helpers import ROOT, SANDBOX, project, run

FAILING_CHECK = """\
kind: check
name: never-found
spec:
  index: notes
  request: {query: {match: {body: unicorn}}}
  expect: {min_hits: 1}
  run: manual
"""


@pytest.fixture
def own_sandbox():
    server = Sandbox().start()
    yield server
    server.stop()


def one_json(result):
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)  # the whole of stdout is exactly one JSON document


def test_json_junit_and_markdown_outputs_of_plan_apply_check_destroy(tmp_path):
    folder = project(tmp_path, extra={"40-failing.yaml": FAILING_CHECK})

    planned = run(["plan", *SANDBOX, "--json", "--markdown", "plan.md"], cwd=folder)
    assert planned.returncode == 0, planned.stderr
    assert one_json(planned)["summary"]["create"] == 2
    markdown = (folder / "plan.md").read_text()
    assert "## es-stack plan: stack `t`" in markdown and "Plan: 2 to create" in markdown
    assert "### Changes" in markdown and "<details>" in markdown and "`+` | `index/notes`" in markdown

    applied = run(["apply", *SANDBOX, "--yes", "--json", "--junit", "apply.xml", "--markdown", "apply.md"],
                  cwd=folder)
    assert applied.returncode == 0, applied.stderr
    document = one_json(applied)
    assert document["outcome"] == "applied" and document["plan"]["summary"]["create"] == 2
    assert {c["key"] for c in document["applied"]} == {"index/notes", "documents/notes-seed"}
    assert all(c["seconds"] >= 0 for c in document["applied"])
    assert [c["name"] for c in document["checks"]] == ["notes-found"] and document["checks"][0]["ok"]
    assert "apply complete: 2 changes applied." in applied.stderr  # the human summary goes to stderr
    suite = ET.parse(folder / "apply.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    markdown = (folder / "apply.md").read_text()
    assert "### Checks" in markdown and "**1 passed, 0 failed**" in markdown and "### Applied" in markdown

    checked = run(["check", *SANDBOX, "--json", "--junit", "check.xml", "--markdown", "check.md"], cwd=folder)
    assert checked.returncode == 1  # the manual check fails
    document = one_json(checked)
    assert (document["passed"], document["failed"]) == (1, 1)
    suite = ET.parse(folder / "check.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert cases["never-found"].find("failure") is not None and cases["notes-found"].find("failure") is None
    assert "**1 passed, 1 failed**" in (folder / "check.md").read_text()

    again = run(["apply", *SANDBOX, "--yes", "--json"], cwd=folder)
    assert one_json(again)["outcome"] == "no changes"

    destroyed = run(["destroy", *SANDBOX, "--yes", "--allow-data-loss", "--json"], cwd=folder)
    assert destroyed.returncode == 0, destroyed.stderr
    document = one_json(destroyed)
    assert document["plan"]["destroy"] is True and len(document["applied"]) == 2
    assert "destroy complete: 2 resources deleted." in destroyed.stderr

    status = run(["status", *SANDBOX], cwd=folder)
    assert "Stack 't': status" in status.stdout


def test_an_error_under_json_is_still_one_json_document(tmp_path):
    result = run(["apply", "--yes", "--json"], cwd=project(tmp_path), env={"ELASTICSEARCH_URL": "localhost:9200"})
    assert result.returncode == 1
    assert "ELASTICSEARCH_URL" in one_json(result)["error"]


def on_a_terminal(args, cwd, env):
    """Runs with stdout on a pseudo-terminal; what it printed there."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    environ.update(PYTHONPATH=str(ROOT), ES_STACK_SANDBOX_STATE=str(cwd / ".cache" / "state.json"), **env)
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "provisioning.cli", *args], cwd=cwd, env=environ,
                               stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_no_color_on_a_terminal(tmp_path):
    folder = project(tmp_path)
    coloured = on_a_terminal(["plan", *SANDBOX], folder, {})
    assert "index/notes" in coloured and "\x1b[" in coloured  # the control: colour on a terminal
    for args, env in ((["plan", *SANDBOX], {"NO_COLOR": "1"}), (["plan", *SANDBOX, "--no-color"], {})):
        plain = on_a_terminal(args, folder, env)
        assert "index/notes" in plain and "\x1b" not in plain


COHERE = """\
kind: inference_endpoint
name: cohere-rerank
spec:
  task_type: rerank
  service: cohere
  service_settings: {model_id: rerank-english-v3.0}
  secrets:
    api_key: {env: COHERE_API_KEY}
"""


def test_plan_needs_no_write_only_secret_and_apply_does(tmp_path):
    folder = project(tmp_path, extra={"50-cohere.yaml": COHERE})
    planned = run(["plan", *SANDBOX, "--out", "plan.json"], cwd=folder)
    assert planned.returncode == 0, planned.stderr
    assert "cohere-rerank" in planned.stdout and "will be set at apply" in planned.stdout
    refused = run(["apply", *SANDBOX, "--yes"], cwd=folder)
    assert refused.returncode == 1 and "COHERE_API_KEY" in refused.stderr
    from_file = run(["apply", *SANDBOX, "--yes", "--plan", "plan.json"], cwd=folder)
    assert from_file.returncode == 1 and "COHERE_API_KEY" in from_file.stderr
    key = {"COHERE_API_KEY": "cohere-key-for-the-test-0123"}
    applied = run(["apply", *SANDBOX, "--yes", "--plan", "plan.json"], cwd=folder, env=key)
    assert applied.returncode == 0, applied.stderr
    again = run(["plan", *SANDBOX, "--detailed-exitcode"], cwd=folder, env=key)
    assert again.returncode == 0, again.stdout + again.stderr  # the secret's hash was recorded at apply
    rotated = run(["plan", *SANDBOX, "--detailed-exitcode"], cwd=folder, env={"COHERE_API_KEY": "another-key-9876"})
    assert rotated.returncode == 2 and "secrets" in rotated.stdout


ECHO_SECRET = "tok/+en=Zq8&Xw3 \"quoted\" Vb7"


def test_a_secret_elasticsearch_echoes_in_its_error_is_redacted_in_text_and_json(tmp_path, own_sandbox):
    """ES refuses a setting it does not know and echoes the settings with their values in its reason; we print
    neither the value nor any encoding of it."""
    import base64
    from urllib.parse import quote

    folder = project(tmp_path, extra={"50-cohere.yaml": COHERE})
    own_sandbox.faults = type(own_sandbox.faults).from_dict(
        {"rules": [{"path": "^/_inference/", "method": "PUT", "status": 400, "echo_settings": True}]})
    forms = [ECHO_SECRET, json.dumps(ECHO_SECRET)[1:-1], quote(ECHO_SECRET, safe=""),
             base64.b64encode(ECHO_SECRET.encode()).decode()]
    env = {"ELASTICSEARCH_URL": own_sandbox.url, "COHERE_API_KEY": ECHO_SECRET}
    for extra in ([], ["--json"], ["--verbose"]):
        result = run(["apply", "--stack", "t", "--yes", *extra], cwd=folder, env=env)
        assert result.returncode == 1
        out = result.stdout + result.stderr
        assert "unknown to the [cohere] service" in out and "api_key=(sensitive value)" in out, out
        for form in forms:
            assert form not in out, (form, out)
        if extra == ["--json"]:
            assert "unknown to the [cohere] service" in one_json(result)["error"]
    own_sandbox.faults = type(own_sandbox.faults)()


def test_search_uses_the_index_of_the_selected_environment(tmp_path):
    folder = project(tmp_path)
    (folder / ".env").write_text("INDEX=notes-dev\n")
    (folder / ".env.staging").write_text("INDEX=notes-staging\n")
    applied = run(["apply", *SANDBOX, "--yes", "--env", "staging"], cwd=folder)
    assert applied.returncode == 0, applied.stderr
    found = run(["search", "hello", *SANDBOX, "--env", "staging"], cwd=folder)
    assert found.returncode == 0, found.stderr
    assert "searching notes-staging" in found.stderr and "first" in found.stdout
    default = run(["search", "hello", *SANDBOX], cwd=folder)
    assert "notes-dev" in default.stderr and default.returncode == 1  # not applied in the default environment


def test_search_asks_to_choose_an_index_when_the_manifests_name_several(tmp_path):
    other = "kind: index\nname: other\nspec: {mappings: {properties: {body: {type: text}}}}\n"
    folder = project(tmp_path, extra={"60-other.yaml": other,
                                      "70-check.yaml": FAILING_CHECK.replace("index: notes", "index: other")})
    result = run(["search", "hello", *SANDBOX], cwd=folder)
    assert result.returncode == 1 and "choose --index" in result.stderr and "notes, other" in result.stderr


def test_two_sandbox_runs_on_one_state_file_are_refused(tmp_path):
    import fcntl

    folder = project(tmp_path)
    state = folder / ".cache" / "sandbox-state.json"
    state.parent.mkdir(parents=True)
    with open(state.with_name(state.name + ".lock"), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 1: es-stack apply --sandbox")
        held.flush()
        result = run(["plan", *SANDBOX], cwd=folder)
    assert result.returncode == 1 and "another --sandbox run" in result.stderr, result.stderr
    assert "ES_STACK_SANDBOX_STATE" in result.stderr


def test_lock_timeout_waits_for_the_holder_then_applies(tmp_path, own_sandbox):
    from provisioning import make_context

    folder = project(tmp_path)
    ctx = make_context(Elasticsearch(own_sandbox.url), stack="t")
    ctx.ledger.load()
    env = {"ELASTICSEARCH_URL": own_sandbox.url}
    with ctx.ledger.locked("a test holding the lock"):
        refused = run(["apply", "--stack", "t", "--yes"], cwd=folder, env=env)
        assert refused.returncode == 1 and "locked by" in refused.stderr
        results = {}
        thread = threading.Thread(target=lambda: results.update(r=run(
            ["apply", "--stack", "t", "--yes", "--lock-timeout", "30"], cwd=folder, env=env)))
        thread.start()
        time.sleep(2)
    thread.join(60)
    waited = results["r"]
    assert waited.returncode == 0, waited.stderr
    assert "waiting up to" in waited.stderr and "for the stack lock, held by" in waited.stderr


def test_ctrl_c_says_what_finished_and_what_was_in_flight(tmp_path, own_sandbox):
    folder = project(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k not in ("ELASTIC_API_KEY", "ELASTIC_CLOUD_ID")}
    environ.update(PYTHONPATH=str(ROOT), ELASTICSEARCH_URL=own_sandbox.url)
    # slow every request down so that the run can be interrupted after its first change
    own_sandbox.faults = type(own_sandbox.faults).from_dict({"latency_ms": 400})
    process = subprocess.Popen([sys.executable, "-m", "provisioning.cli", "apply", "--stack", "t", "--yes",
                                "--parallelism", "1"], cwd=folder, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "index/notes: create done" in line:
            process.send_signal(signal.SIGINT)
            break
    rest = process.communicate(timeout=60)[1]
    own_sandbox.faults = type(own_sandbox.faults)()
    message = "".join(lines) + rest
    assert process.returncode == 130, message
    assert "interrupted" in message and "finished: index/notes (create)" in message, message
    assert "converges" in message
