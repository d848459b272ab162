"""The `evaluation` document type: a post-apply relevance assertion, validated like a kind, never planned.

Like a `check`, an evaluation owns nothing in the cluster, has no plan action and is never recorded in the ledger;
it runs after every apply (unless `run: manual`) and with `invoke evaluate`. Load-time validation (no I/O beyond
reading the judgments and the data files the manifests name):
- the judgments parse (file and line of every malformed entry), with no duplicate (query, document) pair
  (Elasticsearch's `_rank_eval` refuses those too: "Found duplicate rated document key");
- every judgment names a declared query (an error at the judgment's line), and every query has at least one
  judgment (an error at the query's line: with nothing judged every metric is 0);
- a judged document id that no `documents` resource of the index loads is a WARNING naming the judgments file and
  line (the document may be loaded by other means), printed on stderr;
- each variant's request uses `$query` and passes the same search-body checks as a `check`'s request;
- every gate names a declared variant and a declared metric.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from provisioning.errors import Problem
from provisioning.evaluation.judgments import Judgment, judgment_format, read_judgments
from provisioning.model import Resource, SourceLocation

PLACEHOLDER = "$query"
DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@10", "precision@5")


def _inference_ids(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["inference_id"]] if isinstance(node.get("inference_id"), str) else []
        return found + [i for value in node.values() for i in _inference_ids(value)]
    if isinstance(node, list):
        return [i for item in node for i in _inference_ids(item)]
    return []


def substitute(node: Any, text: str) -> Any:
    """The search body with every `$query` in its strings replaced by the query text."""
    if isinstance(node, str):
        return node.replace(PLACEHOLDER, text)
    if isinstance(node, dict):
        return {key: substitute(value, text) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(item, text) for item in node]
    return node


def _uses_placeholder(node: Any) -> bool:
    if isinstance(node, str):
        return PLACEHOLDER in node
    if isinstance(node, dict):
        return any(_uses_placeholder(v) for v in node.values())
    if isinstance(node, list):
        return any(_uses_placeholder(v) for v in node)
    return False


def metrics_of(spec: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(spec.get("metrics") or DEFAULT_METRICS))


def load_judgments(resource: Resource) -> tuple[list[Judgment], list[Problem]]:
    """The judgments of an evaluation (inline or from its file) and the problems reading them."""
    from provisioning.rendering import display_path

    source = resource.spec.get("judgments") or {}
    if "inline" in source:
        out = []
        for i, item in enumerate(source["inline"]):
            where = resource.line_of(f"spec.judgments.inline.{i}")
            out.append(Judgment(str(item["query_id"]), str(item["doc_id"]), int(item["grade"]), where.file,
                                where.line))
        return out, []
    where = resource.line_of("spec.judgments.source")
    path = Path(source["source"])
    path = path if path.is_absolute() else Path(resource.source.file).parent / path
    shown = display_path(path)
    judgments, errors = read_judgments(path, judgment_format(source["source"], source.get("format")), shown)
    return judgments, [Problem(shown if e.line else where.file, e.line or where.line,
                               e.message if e.line else f"{e.message}: {shown}",
                               e.hint + f" (judgments of {resource.key}, declared at {where})") for e in errors]


def judged_documents(resource: Resource, resources: dict[str, Resource]) -> set[str] | None:
    """The ids the manifests' documents resources load into the evaluation's index (None: unknown, e.g. a URL)."""
    from provisioning.diffing import field_value
    from provisioning.kinds.documents_data import DataFileError, data_format, is_url, read_documents, resolve_source

    index = resource.spec.get("index")
    targets = {index}
    for other in resources.values():
        if other.kind == "index" and index in (other.spec.get("aliases") or {}):
            targets.add(other.name)
    sources = [r for r in resources.values() if r.kind == "documents" and r.spec.get("index") in targets]
    if not sources:
        return None
    ids: set[str] = set()
    for docs in sources:
        if is_url(docs.spec["source"]):
            return None
        try:
            rows = read_documents(Path(resolve_source(docs)), data_format(docs))
        except DataFileError:
            return None  # the documents resource reports it
        ids |= {str(field_value(d, docs.spec["id_field"])) for _, d in rows if isinstance(d, dict)}
    return ids


class Evaluations:
    name = "evaluation"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        refs = [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []
        ids = _inference_ids(resource.spec.get("variants"))
        return refs + [f"inference_endpoint/{i}" for i in dict.fromkeys(ids)]

    def warnings(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        """Judged document ids no documents resource of the index loads (file and line of each judgment)."""
        judgments, problems = load_judgments(resource)
        known = judged_documents(resource, resources)
        if problems or known is None:
            return []
        return [Problem(j.file, j.line, f"{resource.key}: judged document {j.doc_id!r} (query {j.query_id}) is "
                        f"not among the documents the manifests load into {resource.spec['index']}",
                        "check the id; a document loaded by other means is fine") for j in judgments
                if j.doc_id not in known]

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        spec = resource.spec
        problems: list[Problem] = []

        def at(path: str, message: str, hint: str) -> None:
            where = resource.line_of(path)
            problems.append(Problem(where.file, where.line, f"{resource.key}: {message}", hint))

        source = spec.get("judgments") or {}
        if ("source" in source) == ("inline" in source):
            at("spec.judgments", "judgments need exactly one of `source` (a file) or `inline` (a list)",
               "e.g. judgments: {source: judgments/movies.qrels}")
            return problems
        if "format" in source and "inline" in source:
            at("spec.judgments.format", "`format` applies to a judgments file, not to inline judgments",
               "remove format")
        judgments, found = load_judgments(resource)
        problems += found
        queries = {str(q): text for q, text in (spec.get("queries") or {}).items()}  # `7:` is YAML's integer 7
        seen: dict[tuple[str, str], Judgment] = {}
        judged: set[str] = set()
        for j in judgments:
            if j.query_id not in queries:
                problems.append(Problem(j.file, j.line, f"{resource.key}: judgment for query {j.query_id!r}, which "
                                        "spec.queries does not declare",
                                        f"declare it under spec.queries (declared: {', '.join(map(str, queries))})"))
                continue
            first = seen.get((j.query_id, j.doc_id))
            if first is not None:
                problems.append(Problem(j.file, j.line, f"{resource.key}: document {j.doc_id!r} is judged twice for "
                                        f"query {j.query_id!r} (first at line {first.line})",
                                        "keep one grade per query and document"))
                continue
            seen[(j.query_id, j.doc_id)] = j
            judged.add(j.query_id)
        if not found:
            for query_id in queries:
                if str(query_id) not in judged:
                    at(f"spec.queries.{query_id}", f"query {query_id!r} has no judgments",
                       "judge at least one document for it (grade 0-3), or remove the query")
        metrics = metrics_of(spec)
        variants = spec.get("variants") or {}
        for name, variant in variants.items():
            request = variant.get("request") if isinstance(variant, dict) else None
            if isinstance(request, dict) and not _uses_placeholder(request):
                at(f"spec.variants.{name}.request", f"variant {name!r} never uses {PLACEHOLDER}",
                   f"put {PLACEHOLDER} where the query text goes, e.g. multi_match: {{query: {PLACEHOLDER}}}")
        for i, gate in enumerate(spec.get("gates") or []):
            if gate["variant"] not in variants:
                at(f"spec.gates.{i}.variant", f"gate names variant {gate['variant']!r}, which is not declared",
                   f"declared variants: {', '.join(variants)}")
            if gate["metric"] not in metrics:
                at(f"spec.gates.{i}.metric", f"gate names metric {gate['metric']!r}, which spec.metrics does not "
                   "compute", f"add it to spec.metrics (computed: {', '.join(metrics)})")
            other = gate["at_least"]
            if isinstance(other, dict) and other["variant"] not in variants:
                at(f"spec.gates.{i}.at_least.variant", f"gate compares with variant {other['variant']!r}, which is "
                   "not declared", f"declared variants: {', '.join(variants)}")
        problems += self._request_problems(resource, resources)
        if not problems:
            for warning in self.warnings(resource, resources):
                print(f"warning: {warning}", file=sys.stderr)
        return problems

    @staticmethod
    def _request_problems(resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        """Each variant's request through the search-body checks of a `check` (lines mapped back)."""
        from provisioning.es_validation import check_problems
        from provisioning.evaluation.metrics import METRIC_PATTERN

        problems = []
        # the searches run with size = the largest k (a reranker's rank_window_size must be at least that)
        ks = [int(m.group(2)) for m in map(METRIC_PATTERN.match, metrics_of(resource.spec)) if m]
        for name, variant in (resource.spec.get("variants") or {}).items():
            prefix = f"spec.variants.{name}.request"
            lines = {"spec.request" + key[len(prefix):]: line for key, line in resource.lines.items()
                     if key == prefix or key.startswith(prefix + ".")}
            probe = Resource("check", resource.name, {"index": resource.spec.get("index"),
                                                      "request": {**substitute(variant.get("request"), "query"),
                                                                  **({"size": max(ks)} if ks else {})}},
                             SourceLocation(resource.source.file, resource.source.line), lines=lines)
            problems += [Problem(p.file, p.line, p.message.replace("spec.request", prefix) + (
                " (the evaluation searches with size = its largest metric k)" if "[size:" in p.message else ""),
                p.hint) for p in check_problems(probe, resources)]
        return problems

    @staticmethod
    def runs_after_apply(resource: Resource) -> bool:
        return resource.spec.get("run", "after_apply") == "after_apply"


EVALUATIONS = Evaluations()
EVALUATION_KIND = Evaluations.name
