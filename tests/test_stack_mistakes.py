"""Issue 10: mistakes Elasticsearch would reject, each ONE change to the example stack, caught before any write at
the line of the mistake.

tests/fixtures/stack_mistakes/_base/ is a copy of the example stack (manifests/, templates/, three films of its
data). Each case folder holds expected.yaml: `change` (replace one text of one file with another, add one file, or
pass one `--env`), the expected problem (`file`, `line`, `message`, optional `hint`) and `expect`:
- validate: `load_manifests` (validate, plan, apply) refuses the stack with that problem, and `invoke apply` exits
  non-zero naming file and line without one write to the cluster;
- plan: a reference to an object the manifests do not declare. Offline it is allowed (the object may exist in the
  cluster); `unresolved_references` must list it at that line, and `invoke plan` against a cluster without it
  refuses it (the planner looks the names up in its batched reads).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from invoke import Context, Exit

from provisioning.errors import ManifestError
from provisioning.es_validation import unresolved_references
from provisioning.manifests import load_manifests

CASES_DIR = Path(__file__).parent / "fixtures" / "stack_mistakes"
BASE = CASES_DIR / "_base"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expected.yaml").is_file())
STACK_VARIABLES = ("RERANK_MODEL_PATH", "SANDBOX_MODEL_PATH", "RERANK_MODEL_REVISION", "HF_TOKEN", "EXPECT_RERANK_TOP",
                   "RERANK_NUM_ALLOCATIONS", "RERANK_NUM_THREADS", "MOVIES_SHARDS", "MOVIES_REPLICAS")


def expected_of(case: str) -> dict:
    return yaml.safe_load((CASES_DIR / case / "expected.yaml").read_text())


def cases(expect: str) -> list[str]:
    return [c for c in CASES if expected_of(c)["expect"] == expect]


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """A fresh copy of the example stack with one case's change applied; the current directory is its root."""
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def make(case: str | None) -> tuple[Path, dict]:
        root = tmp_path / (case or "base")
        shutil.copytree(BASE, root)
        monkeypatch.chdir(root)  # problems name files relative to the current directory
        if case is None:
            return root, {}
        expected = expected_of(case)
        change = expected["change"]
        if "replace" in change:
            path = root / change["file"]
            text = path.read_text()
            assert text.count(change["replace"]) == 1, "a case changes exactly one place"
            path.write_text(text.replace(change["replace"], change["with"]))
        elif "add" in change:
            (root / change["add"]["file"]).write_text(change["add"]["text"])
        return root, expected

    return make


def load(root: Path, expected: dict):
    return load_manifests("manifests", environment=expected.get("change", {}).get("environment"),
                          env_file_dir=root)


def describe(problems) -> str:
    return "\n".join(f"{p} [hint: {p.hint}]" for p in problems)


def test_the_corpus_covers_every_class_with_at_least_40_cases():
    assert len(CASES) >= 40
    assert len(cases("validate")) >= 40


def test_the_base_is_the_valid_example_stack(stack):
    root, _ = stack(None)
    resources = load(root, {})
    assert {r.key for r in resources} >= {"index/movies", "inference_endpoint/my-msmarco-minilm-model",
                                          "check/tutorial-3-reranked"}
    assert unresolved_references(resources) == []


@pytest.mark.parametrize("case", cases("validate"))
def test_mistake_is_refused_at_its_line(case, stack):
    root, expected = stack(case)
    with pytest.raises(ManifestError) as caught:
        load(root, expected)
    problems = caught.value.problems
    matching = [p for p in problems if p.file == expected["file"] and p.line == expected["line"]
                and expected["message"] in p.message]
    assert matching, f"expected {expected['file']}:{expected['line']} {expected['message']!r}, got:\n" \
                     f"{describe(problems)}"
    if "hint" in expected:
        assert any(expected["hint"] in p.hint for p in matching), describe(matching)
    assert all(p.hint for p in problems), f"every problem must say what to do:\n{describe(problems)}"


def test_an_error_in_a_shared_template_is_reported_once(stack):
    root, expected = stack("template_error_in_shared_template_reported_once")
    with pytest.raises(ManifestError) as caught:
        load(root, expected)
    problems = caught.value.problems
    assert len(problems) == 1, describe(problems)
    assert all(name in problems[0].message for name in ("checks.yaml.j2", "movies.yaml.j2", "reranker.yaml.j2"))


@pytest.mark.parametrize("case", cases("plan"))
def test_undeclared_reference_is_allowed_offline_and_listed_for_the_planner(case, stack):
    root, expected = stack(case)
    resources = load(root, expected)
    refs = [(kind, name, str(where)) for _, _, kind, name, where in unresolved_references(resources)]
    want = (expected["reference"]["kind"], expected["reference"]["name"], f"{expected['file']}:{expected['line']}")
    assert refs == [want]


def test_a_data_file_with_a_byte_order_mark_is_read_like_a_manifest_with_one(stack):
    root, _ = stack(None)
    data = root / "manifests" / "data" / "movies.json"
    data.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    manifest = root / "manifests" / "movies.yaml.j2"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert any(r.key == "documents/movies-seed" for r in load(root, {}))


def test_a_data_file_read_by_a_documents_resource_may_sit_in_the_manifests_folder(stack):
    root, _ = stack(None)
    shutil.move(root / "manifests" / "data" / "movies.json", root / "manifests" / "movies.json")
    manifest = root / "manifests" / "movies.yaml.j2"
    manifest.write_text(manifest.read_text().replace("source: data/movies.json", "source: movies.json"))
    assert any(r.key == "documents/movies-seed" for r in load(root, {}))


def test_a_declared_environment_needs_no_env_file(stack):
    root, _ = stack(None)
    (root / ".env.production.example").write_text("MOVIES_REPLICAS=\n")
    resources = load_manifests("manifests", environment="production", env_file_dir=root)
    assert next(r for r in resources if r.key == "index/movies").protected


def run_task(name, root, sandbox, monkeypatch, **options):
    """The task as `invoke NAME --manifests ...` runs it against the sandbox: (exit code, message, writes)."""
    import tasks

    monkeypatch.setenv("ELASTICSEARCH_URL", sandbox.url)
    for variable in ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ES_STACK_NAME"):
        monkeypatch.delenv(variable, raising=False)
    seq = sandbox.log.last_seq
    with pytest.raises(Exit) as caught:
        getattr(tasks, name)(Context(), manifests=str(root / "manifests"), **options)
    return caught.value.code, str(caught.value.message or ""), [e for e in sandbox.log.entries(seq) if e["write"]]


# ---- through the real `invoke apply` against the sandbox: non-zero exit, file and line, not one write ---------
@pytest.mark.parametrize("case", cases("validate"))
def test_invoke_apply_refuses_and_writes_nothing(case, stack, sandbox, monkeypatch):
    root, expected = stack(case)
    code, message, writes = run_task("apply", root, sandbox, monkeypatch, yes=True,
                                     env=expected["change"].get("environment"))
    assert code not in (0, None), message
    where = f"{expected['file']}:{expected['line']}" if expected["line"] else expected["file"]
    assert any(where in line and expected["message"] in line for line in message.splitlines()), message
    assert "Traceback" not in message
    assert writes == []


@pytest.mark.parametrize("case", cases("plan"))
def test_invoke_plan_refuses_a_reference_the_cluster_does_not_have(case, stack, sandbox, monkeypatch):
    root, expected = stack(case)
    code, message, writes = run_task("plan", root, sandbox, monkeypatch)
    assert code not in (0, 2, None), message
    assert f"{expected['file']}:{expected['line']}" in message and expected["reference"]["name"] in message
    assert writes == []


@pytest.mark.parametrize("case", cases("plan"))
def test_missing_in_cluster_reports_the_reference_at_its_line_only_when_the_cluster_lacks_it(case, stack):
    from provisioning.es_validation import missing_in_cluster

    root, expected = stack(case)
    refs = unresolved_references(load(root, expected))
    kind, name = expected["reference"]["kind"], expected["reference"]["name"]
    [problem] = missing_in_cluster(refs, {kind: {"something-else"}})
    assert (problem.file, problem.line) == (expected["file"], expected["line"])
    assert name in problem.message and "neither declared in the manifests nor present in the cluster" in \
        problem.message and problem.hint
    assert missing_in_cluster(refs, {kind: {name}}) == []
    assert missing_in_cluster(refs, {}) == []
