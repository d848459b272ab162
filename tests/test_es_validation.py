"""Offline validation grounded in the ES specification: what Elasticsearch accepts must pass (no false positives on
realistic stacks), and the specification data says where it comes from."""

from __future__ import annotations

import re
import textwrap

import pytest

from provisioning.errors import ManifestError
from provisioning.es_spec import spec
from provisioning.es_validation import unresolved_references
from provisioning.manifests import load_manifests

RICH_STACK = """\
kind: index
name: docs
spec:
  settings:
    index:
      number_of_shards: 2
      refresh_interval: 30s
      max_result_window: 20000
      translog: {durability: async, sync_interval: 10s}
      mapping: {total_fields: {limit: 2000}}
      routing: {allocation: {include: {_tier_preference: data_hot}}}
    analysis:
      char_filter:
        amp: {type: mapping, mappings: ["& => and"]}
      filter:
        my_syn: {type: synonym, synonyms: ["tv, television"]}
        en_stem: {type: stemmer, language: english}
      analyzer:
        my_text: {type: custom, tokenizer: standard, char_filter: [html_strip, amp],
                  filter: [lowercase, my_syn, en_stem]}
        my_std: {type: standard, stopwords: _english_}
      normalizer:
        lc: {type: custom, filter: [lowercase]}
  mappings:
    dynamic: strict
    _source: {excludes: [vec]}
    properties:
      title: {type: text, analyzer: my_text, search_analyzer: standard, copy_to: all,
              fields: {raw: {type: keyword, normalizer: lc, ignore_above: 256}}}
      all: {type: text}
      body: {type: semantic_text, inference_id: my-e5}
      vec: {type: dense_vector, dims: 384, index: true, similarity: cosine, index_options: {type: int8_hnsw}}
      tags: {type: keyword}
      price: {type: scaled_float, scaling_factor: 100}
      published: {type: date, format: strict_date_optional_time}
      meta: {properties: {author: {type: keyword}, views: {type: long}}}
      nested_things: {type: nested, properties: {k: {type: keyword}}}
      sv: {type: sparse_vector}
---
kind: inference_endpoint
name: my-e5
spec:
  task_type: text_embedding
  service: elasticsearch
  service_settings: {model_id: .multilingual-e5-small, num_threads: 1, adaptive_allocations: {enabled: true}}
---
kind: inference_endpoint
name: my-openai
spec:
  task_type: text_embedding
  service: openai
  service_settings: {model_id: text-embedding-3-small, dimensions: 256}
  secrets: {api_key: {env: OPENAI_API_KEY}}
---
kind: inference_endpoint
name: my-cohere-rerank
spec:
  task_type: rerank
  service: cohere
  service_settings: {model_id: rerank-english-v3.0}
  task_settings: {top_n: 10, return_documents: true}
  secrets: {api_key: {env: COHERE_API_KEY}}
---
kind: inference_endpoint
name: my-elser
spec:
  task_type: sparse_embedding
  service: elser
  service_settings: {num_allocations: 1, num_threads: 1}
---
kind: check
name: hybrid
spec:
  index: docs
  request:
    size: 5
    _source: [title]
    retriever:
      rrf:
        retrievers:
          - standard: {query: {bool: {must: [{match: {title: {query: tv, operator: and}}}],
                                      filter: [{term: {tags: a}}, {range: {published: {gte: now-1y}}}]}}}
          - knn: {field: vec, query_vector_builder: {text_embedding: {model_id: my-e5, model_text: tv}}, k: 10,
                  num_candidates: 50}
          - standard: {query: {semantic: {field: body, query: tv}}}
        rank_window_size: 50
    aggs: {by_tag: {terms: {field: tags}}}
    highlight: {fields: {title: {}}}
    sort: [{_score: desc}]
---
kind: check
name: reranked
spec:
  index: docs
  request:
    size: 10
    retriever:
      text_similarity_reranker:
        retriever: {standard: {query: {multi_match: {query: tv, fields: ["title^2", "meta.author", "title.raw"]}}}}
        field: title
        inference_id: my-cohere-rerank
        inference_text: tv
        rank_window_size: 20
---
kind: check
name: nested-and-sparse
spec:
  index: docs
  request:
    query: {bool: {should: [{nested: {path: nested_things, query: {term: {nested_things.k: x}}}},
                            {sparse_vector: {field: sv, inference_id: my-elser, query: tv}}]}}
    post_filter: {exists: {field: tags}}
    track_total_hits: true
---
kind: index
name: logs
spec:
  settings:
    index.number_of_shards: 1
    index.refresh_interval: 1s
    index.mapping.total_fields.limit: 1000
    index.sort.field: ts
    index.sort.order: desc
    analysis:
      analyzer: {default: {type: english}}
      tokenizer: {ng: {type: ngram, min_gram: 2, max_gram: 3, token_chars: [letter]}}
  mappings:
    dynamic_templates:
      - strings: {match_mapping_type: string, mapping: {type: keyword}}
    runtime:
      day: {type: keyword, script: {source: "emit('x')"}}
    properties:
      ts: {type: date}
      msg: {type: match_only_text}
      ip: {type: ip}
      geo: {type: geo_point}
      f: {type: flattened}
      c: {type: completion}
      w: {type: wildcard}
      a: {type: alias, path: ts}
      t: {type: text, index_options: offsets, term_vector: with_positions_offsets, norms: false, fielddata: true}
      k: {type: keyword, eager_global_ordinals: true, doc_values: false, null_value: NA}
      n: {type: long, coerce: false, ignore_malformed: true, null_value: 0}
"""


def test_a_rich_valid_stack_passes_with_nothing_unresolved(tmp_path, monkeypatch):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "stack.yaml").write_text(textwrap.dedent(RICH_STACK))
    monkeypatch.chdir(tmp_path)
    resources = load_manifests("manifests", env_file_dir=tmp_path)
    assert len(resources) == 9
    assert unresolved_references(resources) == []  # `.multilingual-e5-small` is built in: not a reference


def test_the_specification_data_names_its_source():
    source = spec()["source"]
    assert source["repository"] == "https://github.com/elastic/elasticsearch-specification"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert {"elasticsearch", "elser", "openai", "cohere", "hugging_face", "azureopenai", "googlevertexai",
            "mistral", "anthropic"} <= set(spec()["inference_services"])
    assert spec()["field_types"]["semantic_text"] and "text_similarity_reranker" in spec()["retrievers"]


def test_every_problem_is_reported_at_once_even_in_a_resource_with_a_schema_error(tmp_path, monkeypatch):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "index.yaml").write_text(textwrap.dedent("""\
        kind: index
        name: movies
        spec:
          settings: {number_of_shards: 2048}
          mappings:
            properties:
              title: {type: text, analyser: english}
              plot: {type: text, dims: 3}
        """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as caught:
        load_manifests("manifests", env_file_dir=tmp_path)
    shown = "\n".join(map(str, caught.value.problems))
    # shards above 1024, the misspelling (schema), dims on text: one problem each
    assert sorted(p.line for p in caught.value.problems) == [4, 7, 8], shown


@pytest.mark.parametrize(("request_body", "line", "message"), [
    # CompoundRetrieverBuilder.validate (elasticsearch server/.../search/retriever/CompoundRetrieverBuilder.java)
    ("{size: 20, retriever: {rrf: {retrievers: [{standard: {query: {match_all: {}}}}]}}}", 5,
     "[rrf] requires [rank_window_size: 10] be greater than or equal to [size: 20]"),
    ("{retriever: {rrf: {rank_window_size: 50, retrievers: [{text_similarity_reranker: {rank_window_size: 20,\n"
     "      retriever: {standard: {}}, field: plot, inference_text: x}}]}}}", 5,
     "[rrf] requires [rank_window_size: 50] to be smaller than or equal to its sub retriever's "
     "text_similarity_reranker [rank_window_size: 20]"),
    ("{retriever: {text_similarity_reranker: {rank_window_size: -1, retriever: {standard: {}}, field: plot,\n"
     "      inference_text: x}}}", 5, "[rank_window_size] parameter cannot be negative, found [-1]"),
])
def test_rank_window_rules_of_compound_retrievers(tmp_path, monkeypatch, request_body, line, message):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "check.yaml").write_text(
        "kind: check\nname: c\nspec:\n  index: somewhere\n  request: " + request_body + "\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as caught:
        load_manifests("manifests", env_file_dir=tmp_path)
    assert any(p.line == line and message in p.message for p in caught.value.problems), \
        "\n".join(map(str, caught.value.problems))
