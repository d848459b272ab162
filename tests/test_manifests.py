"""Manifest loading: rendering (variables, precedence, templates, determinism), line numbers, and validation rules.
Broken inputs with one expected problem each live in the corpus (tests/test_bad_manifests.py); these tests cover
what the corpus cannot: valid sets, precedence, several problems at once, exact Resource contents."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from provisioning.errors import ManifestError
from provisioning.manifests import load_manifests, parse_yaml_documents, render_manifests
from provisioning.rendering import line_map


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Write a project (manifests/, templates/, data/, .env files) and work from its root."""
    monkeypatch.chdir(tmp_path)

    def write(files: dict[str, str], dedent: bool = True) -> Path:
        for rel, text in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text) if dedent else text)
        return tmp_path

    return write


def problems_of(**kwargs) -> list:
    with pytest.raises(ManifestError) as caught:
        load_manifests("manifests", **kwargs)
    return caught.value.problems


# ---- rendering -----------------------------------------------------------------------------------------------


def test_dotenv_then_environment_file_then_real_environment_then_var(project, monkeypatch):
    project({
        ".env": "A_VAR=from-env\nB_VAR=from-env\nC_VAR=from-env\nD_VAR=from-env\n",
        ".env.prod": "B_VAR=from-prod\nC_VAR=from-prod\n",
        "manifests/a.yaml.j2": "a: {{ A_VAR }}\nb: {{ B_VAR }}\nc: {{ C_VAR }}\nd: {{ D_VAR }}\ne: {{ environment }}\n",
    })
    monkeypatch.setenv("C_VAR", "from-process")
    monkeypatch.delenv("A_VAR", raising=False)
    monkeypatch.delenv("B_VAR", raising=False)
    monkeypatch.delenv("D_VAR", raising=False)
    default = render_manifests("manifests")["manifests/a.yaml.j2"]
    assert default == "a: from-env\nb: from-env\nc: from-process\nd: from-env\ne: default\n"
    prod = render_manifests("manifests", environment="prod", variables={"D_VAR": "from-var"})
    assert prod["manifests/a.yaml.j2"] == "a: from-env\nb: from-prod\nc: from-process\nd: from-var\ne: prod\n"


def test_var_wins_over_the_real_environment_and_env_keeps_the_environment_value(project, monkeypatch):
    project({"manifests/a.yaml.j2": "top: {{ X_VAR }}\nenv: {{ env.X_VAR }}\nvar: {{ var.X_VAR }}\n"})
    monkeypatch.setenv("X_VAR", "process")
    text = render_manifests("manifests", variables=["X_VAR=cli=value"])["manifests/a.yaml.j2"]
    assert text == "top: cli=value\nenv: process\nvar: cli=value\n"


def test_malformed_var_option_is_a_problem(project):
    project({"manifests/a.yaml": "kind: index\nname: a\n"})
    with pytest.raises(ManifestError) as caught:
        render_manifests("manifests", variables=["NO_EQUALS_SIGN"])
    assert "not key=value" in caught.value.problems[0].message


def test_env_file_dir_is_configurable(project, tmp_path):
    project({"config/.env": "WHERE=config\n", "manifests/a.yaml.j2": "w: {{ WHERE }}\n"})
    assert render_manifests("manifests", env_file_dir=tmp_path / "config")["manifests/a.yaml.j2"] == "w: config\n"
    with pytest.raises(ManifestError):  # the default is the project root, which has no .env here
        render_manifests("manifests")


def test_templates_macros_and_includes(project):
    project({"templates/partials/settings.yaml.j2": "  settings:\n    number_of_shards: {{ shards }}\n"}, dedent=False)
    project({
        "templates/macros.j2": """\
            {% macro text_field(name, analyzer="english") -%}
            {{ name }}: {type: text, analyzer: {{ analyzer }}}
            {%- endmacro %}
            """,
        "manifests/10-index.yaml.j2": """\
            {% import "macros.j2" as m %}
            kind: index
            name: movies
            spec:
            {% include "partials/settings.yaml.j2" %}
              mappings:
                properties:
                  {{ m.text_field("title") }}
            """,
    })
    text = render_manifests("manifests", variables={"shards": "2"})["manifests/10-index.yaml.j2"]
    assert text == ("kind: index\nname: movies\nspec:\n  settings:\n    number_of_shards: 2\n  mappings:\n"
                    "    properties:\n      title: {type: text, analyzer: english}\n")
    [index] = load_manifests("manifests", variables={"shards": "2"})
    assert index.spec["settings"] == {"number_of_shards": 2}
    assert index.spec["mappings"]["properties"]["title"] == {"type": "text", "analyzer": "english"}


def test_rendering_is_deterministic_whatever_the_variable_order(project):
    project({"manifests/a.yaml.j2": "{% for k, v in var.items() %}{{ k }}: {{ v }}\n{% endfor %}"})
    one = render_manifests("manifests", variables={"b": "2", "a": "1", "c": "3"})
    two = render_manifests("manifests", variables={"c": "3", "a": "1", "b": "2"})
    assert one == two == {"manifests/a.yaml.j2": "a: 1\nb: 2\nc: 3\n"}


def test_files_are_read_in_name_order_and_only_yaml(project):
    project({"manifests/20-b.yaml": "x: 2\n", "manifests/10-a.yaml.j2": "x: 1\n", "manifests/notes.md": "# no\n",
             "manifests/sub/30-c.yaml": "x: 3\n"})
    assert list(render_manifests("manifests")) == ["manifests/10-a.yaml.j2", "manifests/20-b.yaml"]


# ---- YAML with line numbers ----------------------------------------------------------------------------------


def test_values_and_lines_of_every_key():
    text = "# comment\nname: a\nkind: check\nspec:\n  expect:\n    contains:\n      - field: title\n        equals: x\n"
    [doc], problems = parse_yaml_documents(text, "f.yaml")
    assert problems == []
    assert doc.value["spec"]["expect"]["contains"] == [{"field": "title", "equals": "x"}]
    assert doc.lines["kind"] == 3
    assert doc.lines["spec.expect.contains"] == 6
    assert doc.lines["spec.expect.contains.0"] == 7
    assert doc.lines["spec.expect.contains.0.equals"] == 8


def test_merge_keys_work_dates_stay_text_and_keys_stay_as_written():
    text = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nwhen: 2024-01-02\nkeys: {on: 1, 2: x}\n"
    [doc], problems = parse_yaml_documents(text, "f.yaml")
    assert problems == []
    assert doc.value["other"] == {"x": 1, "y": 3}
    assert doc.value["when"] == "2024-01-02"
    assert doc.value["keys"] == {"on": 1, "2": "x"}


def test_keys_equal_as_json_are_duplicates():
    _, problems = parse_yaml_documents("a:\n  1: x\n  '1': y\n", "f.yaml")
    assert [(p.line, p.message) for p in problems] == [(3, "duplicate key '1' (first at line 2)")]


def test_line_map_follows_substitutions_removed_block_lines_and_includes():
    source = "a: 1\n{% if x %}\nb: {{ b }}\n{% endif %}\n{% include 'p' %}\nc: 3\n"
    rendered = "a: 1\nb: 2\ninc1: 1\ninc2: 2\nc: 3\n"
    assert line_map(source, rendered) == [1, 3, 5, 5, 6]


def test_resource_locations_after_template_expansion(project):
    fields = "      one: {type: text}\n      two: {type: text}\n      three: {type: text}\n"
    project({"templates/partials/fields.yaml.j2": fields}, dedent=False)
    project({
        "manifests/10-index.yaml.j2": """\
            {% set replicas = 0 %}
            kind: index
            name: movies
            spec:
              mappings:
                properties:
            {% include "partials/fields.yaml.j2" %}
                  year: {type: long}
              settings:
                number_of_replicas: {{ replicas }}
            ---
            # a second document
            kind: documents
            name: seed
            spec: {index: movies, source: data.json, id_field: id}
            """,
        "manifests/data.json": '[{"id": "1", "year": 1999}]',
    })
    index, seed = load_manifests("manifests")
    assert str(index.source) == "manifests/10-index.yaml.j2:2"
    assert index.lines["spec.mappings.properties.year"] == 8
    assert index.lines["spec.settings.number_of_replicas"] == 10
    assert index.lines["spec.mappings.properties.two"] == 7  # included lines map to the include
    assert str(seed.source) == "manifests/10-index.yaml.j2:13"
    assert str(seed.line_of("spec.index")) == "manifests/10-index.yaml.j2:15"


# ---- a valid set -------------------------------------------------------------------------------------------


TUTORIAL = {
    "manifests/10-model.yaml": """\
        kind: trained_model
        spec:
          task_type: text_similarity
          source: {hub: cross-encoder/ms-marco-MiniLM-L-6-v2}
        """,
    "manifests/20-endpoint.yaml": """\
        kind: inference_endpoint
        name: my-msmarco-minilm-model
        spec:
          task_type: rerank
          service: elasticsearch
          service_settings: {model_id: cross-encoder__ms-marco-minilm-l-6-v2, num_allocations: 1, num_threads: 1}
        """,
    "manifests/30-index.yaml": """\
        kind: index
        name: movies
        protected: true
        spec:
          settings: {index.number_of_shards: 1, index: {number_of_replicas: 0}, refresh_interval: 1s}
          mappings:
            dynamic: strict
            properties:
              id: {type: keyword}
              title: {type: text}
              year: {type: short}
              cast: {properties: {name: {type: keyword}}}
        """,
    "manifests/40-seed.yaml": """\
        kind: documents
        name: movies-seed
        depends_on: [inference_endpoint/my-msmarco-minilm-model]
        spec: {index: movies, source: ../data/movies.ndjson, id_field: id}
        """,
    "manifests/50-check.yaml": """\
        kind: check
        name: reranked
        spec:
          index: movies
          request:
            retriever:
              text_similarity_reranker:
                retriever: {standard: {query: {match: {title: club}}}}
                field: title
                inference_id: my-msmarco-minilm-model
                inference_text: a film about a fight club
          expect: {min_hits: 1, top: {field: title, equals: Fight Club}}
        """,
    "data/movies.ndjson": '{"id": "1", "title": "Fight Club", "year": "1999", "cast": [{"name": "Brad Pitt"}]}\n'
                          '\n{"id": 2, "title": "Se7en", "year": 1995, "cast.name": "Morgan Freeman"}\n',
}


def test_a_valid_set_loads_with_names_flags_and_dependencies(project):
    project(TUTORIAL)
    resources = {r.key: r for r in load_manifests("manifests")}
    assert list(resources) == ["trained_model/cross-encoder__ms-marco-minilm-l-6-v2",
                               "inference_endpoint/my-msmarco-minilm-model", "index/movies",
                               "documents/movies-seed", "check/reranked"]
    assert resources["index/movies"].protected is True
    assert resources["trained_model/cross-encoder__ms-marco-minilm-l-6-v2"].protected is False
    assert resources["documents/movies-seed"].depends_on == ["inference_endpoint/my-msmarco-minilm-model"]
    assert str(resources["check/reranked"].source) == "manifests/50-check.yaml:1"


def test_inferred_references_to_undeclared_objects_are_allowed(project):
    # an existing index and an existing model in the cluster, not managed by these manifests
    project({
        "manifests/a.yaml": """\
            kind: inference_endpoint
            name: rerank-endpoint
            spec:
              task_type: rerank
              service: elasticsearch
              service_settings: {model_id: existing-model, num_allocations: 1, num_threads: 1}
            ---
            kind: check
            name: c
            spec: {index: existing-index, request: {query: {match_all: {}}}}
            """,
    })
    assert [r.key for r in load_manifests("manifests")] == ["inference_endpoint/rerank-endpoint", "check/c"]


# ---- validation rules ----------------------------------------------------------------------------------------


def test_all_problems_of_all_files_are_reported_at_once_in_order(project):
    project({
        "manifests/10-a.yaml": "kind: index\nname: Bad\nspec: {}\n---\n"
                               "kind: index\nname: a\nspec: {settings: {number_of_shards: 0}}\n",
        "manifests/20-b.yaml": "kind: indx\nname: b\n---\nkind: check\nname: c\nspec: {index: b}\n",
        "manifests/30-c.yaml.j2": "kind: index\nname: {{ NOT_DEFINED_C }}\n",
    })
    problems = problems_of()
    where = [(p.file, p.line) for p in problems]
    assert where == sorted(where)
    assert ("manifests/10-a.yaml", 2) in where  # uppercase name
    assert ("manifests/10-a.yaml", 7) in where  # zero shards
    assert ("manifests/20-b.yaml", 1) in where  # unknown kind
    assert ("manifests/20-b.yaml", 6) in where  # check without request
    assert ("manifests/30-c.yaml.j2", 2) in where  # undefined variable


def test_a_broken_file_does_not_make_depends_on_elsewhere_dangle(project):
    project({"manifests/10-a.yaml": "kind: index\nname: a\nspec: {}\ndepends_on: [index/b]\n",
             "manifests/20-b.yaml": "kind: index\nname: b\nspec: {settings: [\n"})
    problems = problems_of()
    assert [p.file for p in problems] == ["manifests/20-b.yaml"]


@pytest.mark.parametrize("settings", ["{index.number_of_shards: 1}", "{index: {number_of_shards: '1'}}",
                                      "{number_of_shards: 1, index.routing.allocation.include._tier: x}"])
def test_settings_accept_flat_nested_and_unprefixed_forms(project, settings):
    project({"manifests/a.yaml": f"kind: index\nname: a\nspec:\n  settings: {settings}\n"})
    assert load_manifests("manifests")[0].spec["settings"]


@pytest.mark.parametrize(("settings", "suggestion"), [("{index.number_of_shard: 1}", "number_of_shards"),
                                                      ("{index: {refresh_intervall: 1s}}", "refresh_interval")])
def test_misspelled_settings_in_any_form_get_a_suggestion(project, settings, suggestion):
    project({"manifests/a.yaml": f"kind: index\nname: a\nspec:\n  settings: {settings}\n"})
    [problem] = problems_of()
    assert problem.line == 4 and suggestion in problem.hint


def test_alias_named_like_the_index_is_refused(project):
    project({"manifests/a.yaml": "kind: index\nname: movies\nspec:\n  aliases:\n    movies: {}\n"})
    [problem] = problems_of()
    assert (problem.line, "own name" in problem.message) == (5, True)


def test_data_values_follow_elasticsearch_coercion(project):
    project({
        "manifests/a.yaml": """\
            kind: index
            name: m
            spec: {mappings: {properties: {n: {type: byte}, f: {type: float}, b: {type: boolean}, t: {type: keyword}}}}
            ---
            kind: documents
            name: d
            spec: {index: m, source: d.ndjson, id_field: id}
            """,
        "manifests/d.ndjson": '{"id": "1", "n": "12", "f": "1.5", "b": "true", "t": 5, "free": {"x": 1}}\n'
                              '{"id": "2", "n": 300, "f": "x", "b": "yes", "t": {"a": 1}}\n',
    })
    problems = problems_of()
    assert {p.line for p in problems} == {2}  # line 1 is fine: numeric strings coerce, unknown fields are dynamic
    messages = " | ".join(p.message for p in problems)
    for field, kind in (("n", "byte"), ("f", "float"), ("b", "boolean"), ("t", "keyword")):
        assert f"field '{field}'" in messages and f"valid {kind}" in messages


def test_secret_env_name_must_be_a_variable_name_and_is_not_echoed(project):
    project({"manifests/a.yaml": """\
        kind: inference_endpoint
        name: e
        spec:
          task_type: completion
          service: openai
          service_settings: {model_id: gpt}
          secrets: {api_key: {env: "sk-live key"}}
        """})
    [problem] = problems_of()
    assert problem.line == 7 and "sk-live" not in str(problem)


def test_missing_folder_is_a_problem(project):
    [problem] = problems_of()
    assert "manifests folder not found" in problem.message and problem.hint


def test_documents_generated_by_a_loop_point_at_the_loop_body(project):
    project({"manifests/a.yaml.j2": """\
        {% for n in ["a", "b", "C"] %}
        ---
        kind: index
        name: {{ n }}
        spec: {}
        {% endfor %}
        """})
    [problem] = problems_of()
    assert (problem.line, "'C' must be lowercase" in problem.message) == (4, True)


def test_syntax_error_in_an_included_template_names_both_files(project):
    project({"templates/broken.j2": "a: {{ 1 +\n",
             "manifests/a.yaml.j2": "kind: index\nname: a\n{% include 'broken.j2' %}\n"})
    [problem] = problems_of()
    assert (problem.file, problem.line) == ("templates/broken.j2", 1)
    assert "included from manifests/a.yaml.j2:3" in problem.message


def test_loading_never_touches_the_network(project, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("load_manifests opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    project({"manifests/a.yaml": """\
        kind: documents
        name: remote
        spec: {index: movies, source: "https://example.invalid/movies.json", id_field: id}
        """})
    [resource] = load_manifests("manifests")
    assert resource.spec["source"].startswith("https://")


def test_empty_values_count_as_unset(project, monkeypatch):
    project({".env": "FILLED_VAR=from-file\nEMPTY_VAR=\n", "manifests/a.yaml.j2": "f: {{ FILLED_VAR }}\n"})
    monkeypatch.setenv("FILLED_VAR", "")  # an empty real variable does not hide the file's value
    monkeypatch.delenv("EMPTY_VAR", raising=False)
    assert render_manifests("manifests")["manifests/a.yaml.j2"] == "f: from-file\n"
    project({"manifests/a.yaml.j2": "e: {{ EMPTY_VAR }}\n"})
    with pytest.raises(ManifestError) as caught:
        render_manifests("manifests")
    assert "undefined variable EMPTY_VAR" in caught.value.problems[0].message


def test_no_mutation_of_a_valid_set_crashes_the_loader(project, tmp_path):
    """Replace or delete random values of a valid set (fixed seed): the loader answers with resources or a
    ManifestError, never another exception (kinds' validate only sees schema-valid specs)."""
    import copy
    import random

    import yaml

    project(TUTORIAL)
    originals = {p: list(yaml.safe_load_all(p.read_text())) for p in sorted((tmp_path / "manifests").iterdir())}
    junk = [None, 0, -1, 1.5, "", "Bad Name", [], [1], {}, {"a": 1}, True, "movies", {"env": "X"}]
    rng = random.Random(1234)

    def paths(node, prefix=()):
        if prefix:
            yield prefix
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in children:
            yield from paths(value, (*prefix, key))

    refused = 0
    for _ in range(60):
        for path, docs in originals.items():
            docs = copy.deepcopy(docs)
            doc = rng.choice(docs)
            *parents, last = rng.choice(list(paths(doc)))
            node = doc
            for key in parents:
                node = node[key]
            if isinstance(node, dict) and rng.random() < 0.2:
                del node[last]
            else:
                node[last] = copy.deepcopy(rng.choice(junk))
            path.write_text(yaml.safe_dump_all(docs))
        try:
            load_manifests("manifests")
        except ManifestError:
            refused += 1
    assert refused > 30  # the mutations do break things; none of them crashed
