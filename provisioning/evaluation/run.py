"""Running an evaluation: every variant's search for every judged query, the metrics per query and per variant,
the gates, and the comparison with a saved baseline.

How a variant is computed (`method`, default `auto`):
- `rank_eval`: one `POST <index>/_rank_eval` per metric, all queries in it, Elasticsearch scoring them. In 9.x
  `_rank_eval` accepts retrievers: RestRankEvalAction parses the body with the cluster's feature predicate
  (`RankEvalSpec.parse(parser, clusterSupportsFeature)`), RatedRequest parses each `request` with
  `new SearchSourceBuilder().parseXContent(p, false, clusterSupportsFeature)`, and SearchSourceBuilder parses
  `retriever` when the cluster supports `RetrieverBuilder.RETRIEVERS_SUPPORTED` (every 9.x cluster);
  TransportRankEvalAction then runs the requests through `client.multiSearch`, where TransportSearchAction rewrites
  the retriever like any search (elastic/elasticsearch, modules/rank-eval/src/main/java/org/elasticsearch/index/
  rankeval/{RestRankEvalAction,RatedRequest,TransportRankEvalAction}.java and server/.../search/builder/
  SearchSourceBuilder.java). It forces `size` to the metric's k and matches hits to ratings by (_index, _id), the
  CONCRETE index, so the ratings are sent for the index the alias resolves to (`GET <index>`: one request).
- `msearch`: one `_msearch` per variant, every query with `size` = the largest k, scored by
  provisioning/evaluation/metrics.py (the same formulas). `auto` uses `_rank_eval` and falls back to this when
  `_rank_eval` is refused (an older or restricted cluster, a key without the privilege, an alias over several
  indices) and says so in the result's notes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import ApiError

from provisioning.errors import ConfigError, ManifestError, api_error
from provisioning.evaluation.declaration import EVALUATION_KIND, EVALUATIONS, load_judgments, metrics_of, substitute
from provisioning.evaluation.metrics import Metric, mean
from provisioning.model import Resource
from provisioning.tool_files import read_tool_file

BASELINE_FORMAT = "es-stack-evaluation-baseline"
DEFAULT_TOLERANCE = 0.01


@dataclass
class Gate:
    description: str
    ok: bool
    value: float
    required: float

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.description, "ok": self.ok, "value": round(self.value, 6),
                "required": round(self.required, 6)}


@dataclass
class EvaluationResult:
    name: str
    index: str
    method: str
    queries: dict[str, str]
    metrics: list[str]
    scores: dict[str, dict[str, float]]  # variant -> metric -> mean over queries
    per_query: dict[str, dict[str, dict[str, float]]]  # variant -> query -> metric -> value
    ranks: dict[str, dict[str, list[dict[str, Any]]]]  # variant -> query -> [{doc, grade, rank}] (rank None: absent)
    gates: list[Gate] = field(default_factory=list)
    enforced: bool = True
    off_reason: str = ""
    notes: list[str] = field(default_factory=list)
    baseline: list[Gate] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def gates_failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.ok]

    @property
    def ok(self) -> bool:
        return (not self.enforced or not self.gates_failed) and all(g.ok for g in self.baseline)

    @property
    def variants(self) -> list[str]:
        return list(self.scores)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "index": self.index, "method": self.method, "ok": self.ok,
            "gates_enforced": self.enforced, "gates_off_reason": self.off_reason or None, "notes": self.notes,
            "metrics": self.metrics,
            "scores": {v: {m: round(x, 6) for m, x in s.items()} for v, s in self.scores.items()},
            "gates": [g.to_dict() for g in self.gates],
            "baseline": [g.to_dict() for g in self.baseline],
            "queries": {q: {"text": text,
                            "variants": {v: {"metrics": {m: round(x, 6) for m, x in self.per_query[v][q].items()},
                                             "relevant_ranks": self.ranks[v][q]} for v in self.scores}}
                        for q, text in self.queries.items()},
        }


def _grades(resource: Resource) -> dict[str, dict[str, int]]:
    judgments, problems = load_judgments(resource)
    if problems:
        raise ManifestError(problems)
    grades: dict[str, dict[str, int]] = {str(q): {} for q in resource.spec["queries"]}
    for j in judgments:
        grades.setdefault(j.query_id, {})[j.doc_id] = j.grade
    return grades


def _concrete_indices(ctx: Any, index: str) -> list[str]:
    return sorted(ctx.client.indices.get(index=index).body)


def _via_rank_eval(ctx: Any, index: str, concrete: str, requests: dict[str, dict[str, Any]],
                   grades: dict[str, dict[str, int]], metrics: list[Metric]
                   ) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
    per_query: dict[str, dict[str, float]] = {q: {} for q in requests}
    ranked: dict[str, list[str]] = {}
    widest = max(metrics, key=lambda m: m.k)
    for metric in metrics:
        body = {"requests": [{"id": q, "request": request,
                              "ratings": [{"_index": concrete, "_id": doc, "rating": grade}
                                          for doc, grade in grades[q].items()]}
                             for q, request in requests.items()],
                "metric": metric.rank_eval_body()}
        answer = ctx.client.rank_eval(index=index, requests=body["requests"], metric=body["metric"]).body
        failures = answer.get("failures") or {}
        if failures:
            query, error = next(iter(failures.items()))
            reason = error.get("reason") if isinstance(error, dict) else error
            raise RankEvalRefused(f"query {query}: {reason}")
        for q, detail in (answer.get("details") or {}).items():
            per_query[q][metric.label] = float(detail["metric_score"])
            if metric is widest:
                ranked[q] = [h["hit"]["_id"] for h in detail.get("hits") or []]
    return per_query, ranked


def _via_msearch(ctx: Any, index: str, requests: dict[str, dict[str, Any]], grades: dict[str, dict[str, int]],
                 metrics: list[Metric]) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
    size = max(m.k for m in metrics)
    searches: list[dict[str, Any]] = []
    for request in requests.values():
        searches += [{"index": index}, {**request, "size": size, "_source": False}]
    answer = ctx.client.msearch(searches=searches).body
    per_query, ranked = {}, {}
    for q, response in zip(requests, answer["responses"], strict=True):
        if "error" in response:
            error = response["error"]
            raise SearchFailed(f"query {q}: {error.get('reason') if isinstance(error, dict) else error}")
        ranked[q] = [h["_id"] for h in response["hits"]["hits"]]
        per_query[q] = {m.label: m.score(ranked[q], grades[q]) for m in metrics}
    return per_query, ranked


class RankEvalRefused(Exception):
    pass


class SearchFailed(Exception):
    pass


def _gates(resource: Resource, scores: dict[str, dict[str, float]]) -> list[Gate]:
    gates = []
    for gate in resource.spec.get("gates") or []:
        variant, metric, at_least = gate["variant"], gate["metric"], gate["at_least"]
        value = scores[variant][metric]
        if isinstance(at_least, dict):
            other, plus = at_least["variant"], float(at_least.get("plus", 0))
            required = scores[other][metric] + plus
            text = f"{variant} {metric} >= {other} {metric}" + (f" {'+' if plus >= 0 else '-'} {abs(plus):g}"
                                                                 if plus else "")
        else:
            required, text = float(at_least), f"{variant} {metric} >= {float(at_least):g}"
        gates.append(Gate(text, value >= required - 1e-12, value, required))
    return gates


def run_evaluation(ctx: Any, resource: Resource, *, method: str | None = None) -> EvaluationResult:
    spec = resource.spec
    index = spec["index"]
    method = method or spec.get("method", "auto")
    metrics = [Metric.parse(m) for m in metrics_of(spec)]
    grades = _grades(resource)
    queries = {str(q): text for q, text in spec["queries"].items()}
    notes: list[str] = []
    concrete: str | None = None
    if method in ("auto", "rank_eval"):
        try:
            found = _concrete_indices(ctx, index)
        except ApiError as exc:
            if method == "rank_eval":
                raise api_error(exc, resource=resource.key, location=str(resource.source),
                                doing=f"resolving {index} for _rank_eval") from exc
            found = []
            notes.append(f"_rank_eval not used: GET {index} (to match ratings to its concrete index) answered "
                         f"{exc.meta.status}; one _msearch per variant, scored by the tool")
        if len(found) == 1:
            concrete = found[0]
        elif len(found) > 1:
            if method == "rank_eval":
                raise ConfigError(f"{resource.key}: {index} resolves to {len(found)} indices; _rank_eval matches "
                                  "ratings by concrete index, use method: msearch")
            notes.append(f"_rank_eval not used: {index} resolves to {len(found)} indices; one _msearch per "
                         "variant, scored by the tool")
    used = "rank_eval" if concrete else "msearch"
    scores: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    ranks: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, variant in spec["variants"].items():
        requests = {q: substitute(variant["request"], text) for q, text in queries.items()}
        try:
            if concrete:
                try:
                    values, ranked = _via_rank_eval(ctx, index, concrete, requests, grades, metrics)
                except (ApiError, RankEvalRefused) as exc:
                    if method == "rank_eval":
                        raise
                    reason = f"{exc.meta.status} {exc.message}" if isinstance(exc, ApiError) else str(exc)
                    notes.append(f"variant {name}: _rank_eval refused ({reason}); one _msearch instead, scored by "
                                 "the tool")
                    used = "rank_eval+msearch"
                    values, ranked = _via_msearch(ctx, index, requests, grades, metrics)
            else:
                values, ranked = _via_msearch(ctx, index, requests, grades, metrics)
        except ApiError as exc:
            raise api_error(exc, resource=resource.key, location=str(resource.source),
                            doing=f"evaluating variant {name}") from exc
        except (RankEvalRefused, SearchFailed) as exc:
            raise ConfigError(f"{resource.key}: variant {name}: {exc} (declared at {resource.source})") from exc
        per_query[name] = values
        scores[name] = {m.label: mean([values[q][m.label] for q in queries]) for m in metrics}
        ranks[name] = {q: [{"doc": doc, "grade": grade,
                            "rank": ranked[q].index(doc) + 1 if doc in ranked[q] else None}
                           for doc, grade in sorted(grades[q].items(), key=lambda item: (-item[1], item[0]))
                           if grade >= 1] for q in queries}
    result = EvaluationResult(resource.name, index, used, queries, [m.label for m in metrics], scores, per_query,
                              ranks, _gates(resource, scores), spec.get("enforce_gates", True),
                              spec.get("gates_off_reason", ""), notes,
                              tolerance=float(spec.get("baseline_tolerance", DEFAULT_TOLERANCE)))
    if not result.enforced and not result.off_reason:
        result.off_reason = "enforce_gates is false"
    return result


def run_evaluations(ctx: Any, resources: list[Resource], *, manual: bool = False, method: str | None = None,
                    names: list[str] | None = None) -> list[EvaluationResult]:
    """The evaluations among the resources (after apply: those with run: after_apply; manual: all), in order."""
    return [run_evaluation(ctx, r, method=method) for r in resources
            if r.kind == EVALUATION_KIND and (manual or EVALUATIONS.runs_after_apply(r))
            and (not names or r.name in names)]


# ---- baselines ----------------------------------------------------------------------------------------------------
def baseline_dict(results: list[EvaluationResult]) -> dict[str, Any]:
    return {"format": BASELINE_FORMAT, "format_version": 1,
            "evaluations": {r.name: {"index": r.index, "scores": {v: {m: round(x, 6) for m, x in s.items()}
                                                                  for v, s in r.scores.items()}}
                            for r in results}}


def save_baseline(results: list[EvaluationResult], path: str | Path) -> None:
    Path(path).write_text(json.dumps(baseline_dict(results), indent=2, sort_keys=True) + "\n")


def load_baseline(path: str | Path) -> dict[str, Any]:
    return read_tool_file(path, format_name=BASELINE_FORMAT, what="the baseline",
                          expected="an evaluation baseline (made by `invoke evaluate --save-baseline`)")


def compare_baseline(results: list[EvaluationResult], baseline: dict[str, Any],
                     tolerance: float | None = None) -> None:
    """Adds to each result one comparison per variant and metric the baseline holds: the metric may not be lower
    than the baseline's by more than the tolerance (--tolerance, else the evaluation's baseline_tolerance)."""
    saved = baseline.get("evaluations") or {}
    for result in results:
        before = (saved.get(result.name) or {}).get("scores") or {}
        allowed = result.tolerance if tolerance is None else float(tolerance)
        result.tolerance = allowed
        for variant, metrics in before.items():
            for metric, old in metrics.items():
                now = result.scores.get(variant, {}).get(metric)
                if now is None:
                    continue
                result.baseline.append(Gate(f"{variant} {metric} >= baseline {old:.4f} - {allowed:g}",
                                            now >= float(old) - allowed - 1e-12, now, float(old) - allowed))
