"""Bad input through the real `invoke apply` path: a non-zero exit, a message naming the file and line and saying
what to do, and not one write in the sandbox's request log (issue 6, item 4).

Every case of the corpus (tests/fixtures/bad_manifests/<case>/, see tests/test_bad_manifests.py) is run through the
`apply` task function itself (tasks.py: option parsing, the engine call, the error-to-exit mapping), in-process for
speed, with ELASTICSEARCH_URL pointing at the test sandbox. A few are also run as a real `invoke apply --yes`
subprocess, to prove the command line behaves the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from invoke import Context, Exit

import tasks
from testbed.example_stack import ROOT

CASES_DIR = ROOT / "tests" / "fixtures" / "bad_manifests"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expected.yaml").is_file())
SUBPROCESS_CASES = ["jinja_undefined_variable", "documents_field_not_in_strict_mapping", "dependency_cycle_explicit"]


def expected_of(case: str) -> dict:
    return yaml.safe_load((CASES_DIR / case / "expected.yaml").read_text())


def location(expected: dict) -> str:
    return f"{expected['file']}:{expected['line']}" if expected["line"] else expected["file"]


def problem_line(message: str, expected: dict) -> str | None:
    """The line of the error output reporting the expected problem (the location, then the message)."""
    for line in message.splitlines():
        if location(expected) in line and expected["message"] in line:
            return line
    return None


def test_the_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_invoke_apply_refuses_bad_input_with_file_line_and_hint_and_writes_nothing(case, sandbox, monkeypatch):
    folder = CASES_DIR / case
    monkeypatch.chdir(folder)  # where a pipeline runs `invoke apply` from: problems name files relative to it
    monkeypatch.setenv("ELASTICSEARCH_URL", sandbox.url)
    for name in ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ES_STACK_NAME"):
        monkeypatch.delenv(name, raising=False)
    seq = sandbox.log.last_seq
    with pytest.raises(Exit) as caught:
        tasks.apply(Context(), manifests=str(folder / "manifests"), yes=True)
    exit_ = caught.value
    message = str(exit_.message or "")
    expected = expected_of(case)
    assert exit_.code not in (0, None), message
    line = problem_line(message, expected)
    assert line is not None, f"expected {location(expected)} {expected['message']!r} in:\n{message}"
    assert line.rstrip().endswith(")"), f"the problem does not say what to do (no hint): {line}"
    writes = [e for e in sandbox.log.entries(seq) if e["write"]]
    assert writes == [], f"bad input must write nothing, got {writes}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_the_invoke_command_line_exits_non_zero_and_writes_nothing(case, sandbox, tmp_path):
    folder = CASES_DIR / case
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELASTIC", "ES_STACK"))}
    env.update(ELASTICSEARCH_URL=sandbox.url, PYTHONPATH=str(ROOT))
    seq = sandbox.log.last_seq
    invoke = Path(sys.executable).with_name("invoke")
    proc = subprocess.run([str(invoke), "--search-root", str(ROOT), "apply", "--yes", "--manifests",
                           str(folder / "manifests")], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=110, stdin=subprocess.DEVNULL)
    expected = expected_of(case)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    line = problem_line(output, expected)
    assert line is not None and line.rstrip().endswith(")"), output
    assert [e for e in sandbox.log.entries(seq) if e["write"]] == []
