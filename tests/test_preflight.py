"""provisioning.preflight.server_preflight against the sandbox: ES's own verdict on declared index bodies and check
queries, at the manifest line, without one write."""

from __future__ import annotations

from provisioning.manifests import parse_yaml_documents
from provisioning.model import Resource, SourceLocation
from provisioning.preflight import server_preflight

INDEX = """\
kind: index
name: movies
spec:
  settings:
    number_of_shards: {shards}
  mappings:
    properties:
      plot: {{type: text, analyzer: {analyzer}}}
      title: {{type: text}}
"""
CHECK = """\
kind: check
name: reranked
spec:
  index: movies
  request:
    retriever:
      standard:
        query:
          {query}: {{plot: crime}}
"""


def resource(text: str) -> Resource:
    """A Resource straight from YAML, with its line map, bypassing offline validation (preflight's own job is to
    ask the cluster about what offline checks cannot know)."""
    docs, problems = parse_yaml_documents(text, "manifests/x.yaml")
    assert not problems
    doc = docs[0]
    return Resource(doc.value["kind"], doc.value["name"], doc.value["spec"], SourceLocation(doc.file, doc.line),
                    lines=doc.lines)


def writes(sandbox, seq):
    return [e for e in sandbox.log.entries(seq) if e["write"]]


def test_a_valid_stack_passes_and_nothing_is_written(es, sandbox):
    es.indices.create(index="movies", mappings={"properties": {"plot": {"type": "text"}}})
    seq = sandbox.log.last_seq
    found = server_preflight(es, [resource(INDEX.format(shards=1, analyzer="english")),
                                  resource(CHECK.format(query="match"))], ["movies"])
    assert found == []
    assert writes(sandbox, seq) == []
    assert es.indices.get_index_template().body["index_templates"] == []


def test_index_refusals_are_reported_at_the_offending_line(es, sandbox):
    seq = sandbox.log.last_seq
    [problem] = server_preflight(es, [resource(INDEX.format(shards=1, analyzer="no_such_analyzer"))], [])
    assert (problem.file, problem.line) == ("manifests/x.yaml", 8)
    assert "no_such_analyzer" in problem.message and problem.hint
    [problem] = server_preflight(es, [resource(INDEX.format(shards=0, analyzer="english"))], [])
    assert (problem.file, problem.line) == ("manifests/x.yaml", 5)
    assert "index.number_of_shards" in problem.message
    assert writes(sandbox, seq) == []


def test_check_queries_are_validated_only_on_existing_indices(es, sandbox):
    es.indices.create(index="movies", mappings={"properties": {"plot": {"type": "text"}}})
    check = resource(CHECK.format(query="mach"))
    seq = sandbox.log.last_seq
    [problem] = server_preflight(es, [check], ["movies"])
    assert (problem.file, problem.line) == ("manifests/x.yaml", 9)  # the line of the query name
    assert "unknown query [mach]" in problem.message
    assert server_preflight(es, [check], []) == []  # the index does not exist yet: nothing to ask
    assert writes(sandbox, seq) == []
