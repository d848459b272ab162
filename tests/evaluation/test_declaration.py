"""An evaluation is validated at load time like every document: judgments in each format, errors at their lines,
unknown document ids as warnings naming the judgments file and line; it is never a planned change."""

from __future__ import annotations

import json

import pytest

from provisioning import load_manifests
from provisioning.errors import ManifestError
from provisioning.evaluation.declaration import substitute
from provisioning.evaluation.judgments import parse_judgments

STACK = """kind: index
name: films
spec:
  mappings:
    properties:
      id: {type: keyword}
      text: {type: text}
---
kind: documents
name: seed
spec:
  index: films
  source: data/films.json
  id_field: id
---
kind: evaluation
name: fruit
spec:
  index: films
  judgments: JUDGMENTS
  queries:
    apple: red apple
    car: car
  variants:
    good:
      request: {query: {match: {text: $query}}}
    other:
      request: {query: {match: {text: {query: $query, operator: and}}}}
  metrics: [ndcg@10, mrr@10]
  gates:
    - {variant: good, metric: ndcg@10, at_least: 0.5}
"""
QUERIES_LINE = 22  # `apple: red apple` is line 22, `car: car` line 23


def write_stack(tmp_path, judgments_yaml, files=None, stack=STACK):
    folder = tmp_path / "manifests"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "films.json").write_text(json.dumps(
        [{"id": d, "text": t} for d, t in (("d1", "red apple"), ("d2", "green apple"), ("d3", "red car"))]))
    (folder / "judgments").mkdir()
    for name, text in (files or {}).items():
        (folder / "judgments" / name).write_text(text)
    (folder / "stack.yaml").write_text(stack.replace("JUDGMENTS", judgments_yaml))
    return folder


def problems(folder):
    with pytest.raises(ManifestError) as exc:
        load_manifests(folder)
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize("name,text", [
    ("j.qrels", "# comment\napple 0 d1 3\napple 0 d2 1\ncar 0 d3 2\n"),
    ("j.csv", "query_id,doc_id,grade\napple,d1,3\napple,d2,1\ncar,d3,2\n"),
    ("j.jsonl", '{"query_id": "apple", "doc_id": "d1", "grade": 3}\n{"query_id": "apple", "doc_id": "d2", '
                '"grade": 1}\n{"query_id": "car", "doc_id": "d3", "grade": 2}\n'),
])
def test_each_judgment_format_loads(tmp_path, capsys, name, text):
    resources = load_manifests(write_stack(tmp_path, f"{{source: judgments/{name}}}", {name: text}))
    assert [r.key for r in resources][-1] == "evaluation/fruit"
    assert "warning" not in capsys.readouterr().err


def test_inline_judgments(tmp_path):
    inline = "{inline: [{query_id: apple, doc_id: d1, grade: 3}, {query_id: car, doc_id: d3, grade: 2}]}"
    assert load_manifests(write_stack(tmp_path, inline))[-1].kind == "evaluation"


def test_a_query_without_judgments_is_an_error_at_its_line(tmp_path):
    folder = write_stack(tmp_path, "{source: judgments/j.qrels}", {"j.qrels": "apple 0 d1 3\n"})
    found = problems(folder)
    assert any(f"stack.yaml:{QUERIES_LINE + 1}: evaluation/fruit: query 'car' has no judgments" in p for p in found)


def test_unknown_document_ids_are_warnings_naming_file_and_line(tmp_path, capsys):
    folder = write_stack(tmp_path, "{source: judgments/j.qrels}",
                         {"j.qrels": "apple 0 d1 3\napple 0 nosuchdoc 2\ncar 0 d3 2\n"})
    load_manifests(folder)  # not an error
    err = capsys.readouterr().err
    assert "warning: " in err and "judgments/j.qrels:2: evaluation/fruit: judged document 'nosuchdoc'" in err


def test_malformed_judgments_and_unknown_queries_are_errors_at_their_lines(tmp_path):
    folder = write_stack(tmp_path, "{source: judgments/j.csv}", {"j.csv": (
        "query_id,doc_id,grade\napple,d1,3\ncar,d3,high\ncar,d3,2\nbanana,d2,1\napple,d1,2\n")})
    found = "\n".join(problems(folder))
    assert "judgments/j.csv:3: grade 'high' is not an integer" in found
    assert "judgments/j.csv:5: evaluation/fruit: judgment for query 'banana'" in found
    assert "judgments/j.csv:6: evaluation/fruit: document 'd1' is judged twice for query 'apple' (first at line 2)" \
        in found
    trec = write_stack(tmp_path / "t", "{source: judgments/j.qrels}", {"j.qrels": "apple 0 d1\ncar 0 d3 2\n"})
    assert any("j.qrels:1: a TREC qrels line has 4 fields, this one has 3" in p for p in problems(trec))


def test_gates_variants_and_metrics_are_checked(tmp_path):
    stack = STACK.replace("at_least: 0.5}", "at_least: {variant: nope}}\n    - {variant: good, metric: recall@3, "
                          "at_least: 1}").replace("{query: {match: {text: $query}}}",
                                                  "{query: {match: {text: fixed}}}")
    folder = write_stack(tmp_path, "{source: judgments/j.qrels}", {"j.qrels": "apple 0 d1 3\ncar 0 d3 2\n"},
                         stack=stack)
    found = "\n".join(problems(folder))
    assert "variant 'good' never uses $query" in found
    assert "gate compares with variant 'nope', which is not declared" in found
    assert "gate names metric 'recall@3', which spec.metrics does not compute" in found
    one_variant = STACK.replace("    other:\n      request: {query: {match: {text: {query: $query, operator: and}}}}\n",
                                "")
    folder = write_stack(tmp_path / "v", "{source: judgments/j.qrels}", {"j.qrels": "apple 0 d1 3\ncar 0 d3 2\n"},
                         stack=one_variant)
    assert any("two or more variants" in p for p in problems(folder))


def test_parse_and_substitute_helpers():
    judgments, errors = parse_judgments("q 0 d 3\nq 0 e -1\n", "trec", "f.qrels")
    assert [(j.query_id, j.doc_id, j.grade, j.line) for j in judgments] == [("q", "d", 3, 1)]
    assert [e.line for e in errors] == [2]
    assert substitute({"a": ["$query!", {"b": "x $query"}], "n": 1}, "red") == {"a": ["red!", {"b": "x red"}], "n": 1}


def test_a_reranker_window_smaller_than_the_largest_k_is_an_error(tmp_path):
    stack = STACK.replace("request: {query: {match: {text: {query: $query, operator: and}}}}", (
        "request: {retriever: {text_similarity_reranker: {retriever: {standard: {query: {match: {text: $query}}}}, "
        "field: text, inference_id: .rerank-v1-elasticsearch, inference_text: $query}}}")).replace(
        "[ndcg@10, mrr@10]", "[ndcg@20, mrr@10]")
    folder = write_stack(tmp_path, "{source: judgments/j.qrels}", {"j.qrels": "apple 0 d1 3\ncar 0 d3 2\n"},
                         stack=stack)
    found = "\n".join(problems(folder))
    assert "requires [rank_window_size: 10] be greater than or equal to [size: 20]" in found
    assert "the evaluation searches with size = its largest metric k" in found


def test_numeric_query_ids_as_in_trec_files(tmp_path):
    stack = STACK.replace("    apple: red apple\n    car: car\n", "    1: red apple\n    2: car\n")
    folder = write_stack(tmp_path, "{source: judgments/j.qrels}", {"j.qrels": "1 0 d1 3\n2 0 d3 2\n"}, stack=stack)
    assert load_manifests(folder)[-1].kind == "evaluation"
