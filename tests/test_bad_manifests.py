"""The bad-input corpus: every broken manifest set under tests/fixtures/bad_manifests/<case>/ must be refused by
load_manifests with a problem at the expected file and line, with the expected message and a hint saying what to do.

Each case folder is a project root: manifests/ (and templates/, data/, .env when the case needs them) plus
expected.yaml {file, line, message[, note]}; file is relative to the case folder, line may be null.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioning.errors import ManifestError
from provisioning.manifests import load_manifests

CASES_DIR = Path(__file__).parent / "fixtures" / "bad_manifests"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expected.yaml").is_file())


def load_case(case: str, monkeypatch) -> tuple[list, dict]:
    folder = CASES_DIR / case
    expected = yaml.safe_load((folder / "expected.yaml").read_text())
    monkeypatch.chdir(folder)  # problems name files relative to the current directory
    with pytest.raises(ManifestError) as caught:
        load_manifests("manifests", env_file_dir=folder)
    return caught.value.problems, expected


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES)
def test_bad_manifest_is_refused_at_its_location(case, monkeypatch):
    problems, expected = load_case(case, monkeypatch)
    matching = [p for p in problems if p.file == expected["file"] and p.line == expected["line"]
                and expected["message"] in p.message]
    shown = "\n".join(str(p) for p in problems)
    assert matching, f"expected {expected['file']}:{expected['line']} {expected['message']!r}, got:\n{shown}"
    assert all(p.hint for p in problems), f"every problem must say what to do:\n{shown}"


@pytest.mark.parametrize("case", ["secret_given_literally", "secret_in_service_settings"])
def test_secret_values_never_appear_in_problems(case, monkeypatch):
    problems, _ = load_case(case, monkeypatch)
    text = "\n".join(f"{p} {p.hint}" for p in problems)
    assert "sk-not-a-real-key" not in text


def test_suggestions_name_the_closest_valid_word(monkeypatch):
    cases = {"unknown_kind": "did you mean 'index'?", "unknown_top_level_key": "did you mean 'spec'?",
             "model_unknown_task_type": "did you mean 'text_similarity'?",
             "dangling_depends_on": "did you mean 'inference_endpoint/my-rerank'?",
             "misspelled_index_setting": "did you mean 'number_of_shards'?"}
    for case, hint in cases.items():
        problems, _ = load_case(case, monkeypatch)
        assert any(hint in p.hint for p in problems), (case, [str(p) for p in problems])
