"""The example stack's relevance gate: its judgments, the gate on with the hub's cross-encoder and off (with the
reason) with a local model, and `invoke apply` / `invoke evaluate` end to end against the sandbox, with every
output format checked (JSON parsed, JUnit XML parsed and counted, Markdown sections, HTML rendered in chromium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from provisioning import load_manifests
from provisioning.evaluation.declaration import load_judgments
from tests.test_example_stack import STACK_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
CONNECTION_VARS = ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ELASTICSEARCH_URL", "ELASTICSEARCH_USERNAME",
                   "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT")
TUTORIAL = {"tutorial-1": "flesh-eating bad guy", "tutorial-2": "crime"}


def evaluation(monkeypatch, tmp_path, **variables):
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    resources = load_manifests(ROOT / "manifests", variables=variables, env_file_dir=tmp_path)
    return next(r for r in resources if r.kind == "evaluation")


def test_judgments_cover_at_least_12_queries_graded_0_to_3_including_the_tutorials(monkeypatch, tmp_path):
    resource = evaluation(monkeypatch, tmp_path)
    judgments, problems = load_judgments(resource)
    assert not problems
    queries = resource.spec["queries"]
    assert len(queries) >= 12 and {j.query_id for j in judgments} == set(queries)
    assert {j.grade for j in judgments} == {0, 1, 2, 3}
    assert all(queries[q] == text for q, text in TUTORIAL.items()) and "tutorial-3" in queries
    films = {m["id"] for m in json.loads((ROOT / "manifests" / "data" / "movies.json").read_text())}
    assert {j.doc_id for j in judgments} <= films
    top = {j.doc_id for j in judgments if j.query_id == "tutorial-3" and j.grade == 3}
    assert top == {"silence-of-the-lambs-1991"}


def test_the_gate_requires_reranking_to_beat_lexical_only_with_the_real_model(monkeypatch, tmp_path):
    hub = evaluation(monkeypatch, tmp_path).spec
    assert hub["enforce_gates"] is True and "gates_off_reason" not in hub
    assert {"variant": "reranked", "metric": "ndcg@10", "at_least": {"variant": "lexical", "plus": 0.01}} \
        in hub["gates"]
    model = tmp_path / "local-model"
    model.mkdir()
    (model / "config.json").write_text("{}")  # a local Hugging Face directory, as far as loading goes
    local = evaluation(monkeypatch, tmp_path, RERANK_MODEL_PATH=str(model)).spec
    assert local["enforce_gates"] is False
    assert "local model" in local["gates_off_reason"] and "its order means nothing" in local["gates_off_reason"]


def run(*args, tmp_path, check=True):
    environ = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARS + STACK_VARIABLES}
    environ["ES_STACK_SANDBOX_STATE"] = str(tmp_path / "state.json")
    result = subprocess.run([INVOKE, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600,
                            stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """The example stack applied to the sandbox once (the apply prints the evaluation after the checks)."""
    tmp_path = tmp_path_factory.mktemp("example-evaluation")
    result = run("apply", "--sandbox", "--yes", "--stack", "eval-test", tmp_path=tmp_path)
    return tmp_path, result


@pytest.mark.timeout(600)
def test_apply_runs_the_evaluation_after_the_checks(applied):
    _, result = applied
    out = result.stdout
    assert out.index("check/tutorial-3-reranked") < out.index("evaluation/movies-relevance: reported (gates off)")
    assert "gates OFF, not enforced: the reranker is a local model" in out
    for metric in ("ndcg@10", "mrr@10", "recall@10", "precision@5"):
        assert f"  {metric} " in out
    assert "Δ reranked" in out and "per query, ndcg@10 lexical -> reranked" in out


@pytest.mark.timeout(600)
def test_invoke_evaluate_outputs_and_baseline(applied):
    tmp_path, _ = applied
    files = {name: tmp_path / name for name in ("report.xml", "report.md", "report.html", "baseline.json")}
    result = run("evaluate", "--sandbox", "--stack", "eval-test", "--json", "--junit", str(files["report.xml"]),
                 "--markdown", str(files["report.md"]), "--html", str(files["report.html"]),
                 "--save-baseline", str(files["baseline.json"]), tmp_path=tmp_path)
    document = json.loads(result.stdout)  # stdout is ONE JSON document
    assert document["format"] == "es-stack-evaluation" and document["ok"] is True
    (evaluation_,) = document["evaluations"]
    assert evaluation_["gates_enforced"] is False and evaluation_["method"] == "rank_eval"
    assert set(evaluation_["scores"]) == {"lexical", "reranked"}
    assert len(evaluation_["queries"]) == 15 and "differences" in evaluation_

    # the same numbers from one _msearch per variant scored by the tool (reranker included)
    msearch = json.loads(run("evaluate", "--sandbox", "--stack", "eval-test", "--json", "--method", "msearch",
                             tmp_path=tmp_path).stdout)["evaluations"][0]
    assert msearch["method"] == "msearch"
    for variant, scores in evaluation_["scores"].items():
        assert msearch["scores"][variant] == pytest.approx(scores)

    suites = ET.parse(files["report.xml"]).getroot()
    (suite,) = suites.findall("testsuite")
    assert suite.get("name") == "evaluation/movies-relevance"
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests")) == 2
    assert int(suite.get("skipped")) == 2 and all(c.find("skipped") is not None for c in cases)
    assert int(suite.get("failures")) == 0 == int(suites.get("failures"))
    assert len(suite.find("properties").findall("property")) == 8  # 2 variants x 4 metrics

    markdown = files["report.md"].read_text()
    for heading in ("# Relevance evaluation", "## evaluation/movies-relevance", "### Metrics", "### Gates",
                    "### Per-query differences"):
        assert f"\n{heading}" in "\n" + markdown
    assert "| ndcg@10 |" in markdown and "> Gates are off:" in markdown

    # the saved baseline compares equal; a baseline claiming better scores is a regression (exit 1)
    same = run("evaluate", "--sandbox", "--stack", "eval-test", "--compare", str(files["baseline.json"]),
               tmp_path=tmp_path)
    assert "baseline (tolerance 0.02):" in same.stdout and "FAIL" not in same.stdout
    better = json.loads(files["baseline.json"].read_text())
    better["evaluations"]["movies-relevance"]["scores"]["lexical"]["ndcg@10"] += 0.1
    files["baseline.json"].write_text(json.dumps(better))
    regressed = run("evaluate", "--sandbox", "--stack", "eval-test", "--compare", str(files["baseline.json"]),
                    "--junit", str(files["report.xml"]), tmp_path=tmp_path, check=False)
    assert regressed.returncode == 1 and "1 of 1 evaluations failed: movies-relevance" in regressed.stderr
    assert "FAIL lexical ndcg@10 >= baseline" in regressed.stdout
    assert int(ET.parse(files["report.xml"]).getroot().get("failures")) == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.timeout(600)
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's chromium)")
def test_html_report_renders_in_a_headless_browser(applied):
    tmp_path, _ = applied
    page = tmp_path / "page.html"
    run("evaluate", "--sandbox", "--stack", "eval-test", "--html", str(page), tmp_path=tmp_path)
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    # the page's own script ran in the browser: it counted the rows that got better and worse
    assert "15 queries: " in rendered and " better, " in rendered and " worse" in rendered
    assert rendered.count("<tr data-query=") == 15
    assert "Gates are off" in rendered and "silence-of-the-lambs-1991" in rendered
    shot = tmp_path / "page.png"
    snap = subprocess.run([*browser, "--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert snap.returncode == 0 and shot.stat().st_size > 10_000, snap.stderr[-2000:]
    keep = os.environ.get("ES_STACK_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
