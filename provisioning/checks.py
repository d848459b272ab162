"""Checks: post-apply assertions, declared in manifests as `kind: check` documents (a search with expectations
on its hits), run after every apply and by `invoke check`.

A check is not a resource kind: it owns nothing in the cluster, has no plan action and is never recorded in the
ledger. The manifest side (name, references, validation) has the same shape as a kind's, so the loader treats
every document alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError

from provisioning.diffing import field_value
from provisioning.errors import Problem, api_error
from provisioning.model import Resource
from provisioning.report import hits_total


def _inference_ids(node: Any) -> list[str]:
    """Every inference_id inside a search body (retrievers nest arbitrarily)."""
    if isinstance(node, dict):
        found = [node["inference_id"]] if isinstance(node.get("inference_id"), str) else []
        for value in node.values():
            found += _inference_ids(value)
        return found
    if isinstance(node, list):
        return [i for item in node for i in _inference_ids(item)]
    return []


@dataclass
class Expectation:
    description: str
    ok: bool
    detail: str = ""


@dataclass
class CheckResult:
    name: str
    index: str
    ok: bool
    expectations: list[Expectation] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "index": self.index, "ok": self.ok, "total": self.total,
                "expectations": [e.__dict__ for e in self.expectations]}


def evaluate(expect: dict[str, Any], response: dict[str, Any]) -> list[Expectation]:
    """Each declared expectation against a search response (pure)."""
    hits = response.get("hits", {}).get("hits", [])
    total = hits_total(response)
    results = []
    if "total" in expect:
        results.append(Expectation(f"total == {expect['total']}", total == expect["total"], f"got {total}"))
    if "min_hits" in expect:
        results.append(Expectation(f"at least {expect['min_hits']} hits", total >= expect["min_hits"],
                                   f"got {total}"))
    if "max_hits" in expect:
        results.append(Expectation(f"at most {expect['max_hits']} hits", total <= expect["max_hits"],
                                   f"got {total}"))
    if "top" in expect:
        f, want = expect["top"]["field"], expect["top"]["equals"]
        got = field_value(hits[0].get("_source") or {}, f) if hits else None
        results.append(Expectation(f"top hit {f} == {want!r}", bool(hits) and got == want,
                                   f"got {got!r}" if hits else "no hits"))
    for item in expect.get("contains") or []:
        f, want = item["field"], item["equals"]
        ranks = [i + 1 for i, h in enumerate(hits) if field_value(h.get("_source") or {}, f) == want]
        results.append(Expectation(f"some hit has {f} == {want!r}", bool(ranks),
                                   f"at rank {ranks[0]}" if ranks else f"not among {len(hits)} hits"))
    return results


class Checks:
    name = "check"

    def default_name(self, spec: dict[str, Any]) -> str | None:
        return None

    def references(self, resource: Resource) -> list[str]:
        refs = [f"index/{resource.spec['index']}"] if resource.spec.get("index") else []
        return refs + [f"inference_endpoint/{i}" for i in _inference_ids(resource.spec.get("request"))]

    def validate(self, resource: Resource, resources: dict[str, Resource]) -> list[Problem]:
        expect = resource.spec.get("expect") or {}
        low, high = expect.get("min_hits"), expect.get("max_hits")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            where = resource.line_of("spec.expect.min_hits")
            return [Problem(where.file, where.line, f"expect.min_hits ({low}) is larger than max_hits ({high})",
                            "no result could pass this check; make min_hits <= max_hits")]
        return []

    def run(self, ctx: Any, resource: Resource) -> CheckResult:
        spec = resource.spec
        response = ctx.client.search(index=spec["index"], body=spec.get("request") or {}).body
        expectations = evaluate(spec.get("expect") or {}, response)
        return CheckResult(resource.name, spec["index"], all(e.ok for e in expectations), expectations,
                           response.get("hits", {}).get("hits", []), hits_total(response))

    @staticmethod
    def runs_after_apply(resource: Resource) -> bool:
        return resource.spec.get("run", "after_apply") == "after_apply"


CHECKS = Checks()
CHECK_KIND = Checks.name


def run_checks(ctx: Any, resources: list[Resource], *, manual: bool = False) -> list[CheckResult]:
    """The checks among the resources (after apply: those with run: after_apply; manual: all), in manifest order."""
    results = []
    for resource in resources:
        if resource.kind != CHECK_KIND or not (manual or CHECKS.runs_after_apply(resource)):
            continue
        try:
            results.append(CHECKS.run(ctx, resource))
        except ApiError as exc:
            raise api_error(exc, resource=resource.key, location=str(resource.source), doing="check") from exc
    return results
