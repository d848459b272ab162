"""Licence-dependent features, recognised from what a plan will send and run, checked against GET _license before
the first write. A feature the licence does not allow is a warning in the plan (the cluster may be about to get a
licence; ES refuses the requests themselves), never a silent failure later in the checks.

Facts (Elastic's subscription matrix, elastic.co/subscriptions; the ES docs of each API):
- deploying a trained model that is not Elastic's own (an eland-uploaded cross-encoder): Platinum or Enterprise
  (or a trial), `ml` licence check in TransportStartTrainedModelDeploymentAction;
- the `text_similarity_reranker` retriever: Enterprise (or a trial), TextSimilarityRankRetrieverBuilder checks
  the `inference_reranking` licensed feature (not Platinum).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from elasticsearch import ApiError

from provisioning.model import Request, Step


@dataclass(frozen=True)
class Feature:
    name: str
    licences: frozenset[str]
    requests: tuple[str, ...] = ()  # "METHOD /path" patterns of plan operations that use it
    steps: tuple[str, ...] = ()  # plan steps that use it
    in_search: str | None = None  # a search-body key that uses it (checks run after apply)


FEATURES = (
    Feature("a deployment of a third-party trained model", frozenset({"platinum", "enterprise", "trial"}),
            requests=("POST /_ml/trained_models/*/deployment/_start", "PUT /_inference/*/*"),
            steps=("upload_model",)),
    Feature("the text_similarity_reranker retriever", frozenset({"enterprise", "trial"}),
            in_search="text_similarity_reranker"),
)


def _uses(plan: Any, feature: Feature) -> bool:
    for change in plan.changes:
        for op in change.operations:
            if isinstance(op, Request) and any(
                    fnmatch(f"{op.method} {op.path}", p) for p in feature.requests):
                return True
            if isinstance(op, Step) and op.name in feature.steps:
                return True
    return bool(feature.in_search) and any(feature.in_search in str(r.spec) for r in getattr(plan, "checks", []))


def licence_warnings(plan: Any, client: Any) -> list[str]:
    """Warnings for the features the plan uses that the cluster's licence does not allow. One GET _license, only
    when the plan writes and uses a licensed feature; a licence that cannot be read (no `monitor` privilege,
    serverless) is not judged."""
    if not plan.has_changes:
        return []
    used = [f for f in FEATURES if _uses(plan, f)]
    if not used:
        return []
    try:
        licence = client.license.get().body.get("license") or {}
    except ApiError:
        return []
    kind, status = str(licence.get("type", "")).lower(), licence.get("status")
    warnings = []
    for feature in used:
        if status != "active" or kind not in feature.licences:
            needed = " or ".join(sorted(feature.licences - {"trial"}))
            warnings.append(f"{feature.name} needs an {needed} licence (or a trial); this cluster's licence is "
                            f"{kind or 'unknown'} ({status}): Elasticsearch will refuse it (self-managed: "
                            f"POST _license/start_trial?acknowledge=true)")
    return warnings
