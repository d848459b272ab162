"""Public API of the engine: what tasks.py, bench/ and tests import. Nothing here imports sandbox/.

    resources = load_manifests("manifests", environment="staging", variables={"replicas": "1"})
    ctx = make_context(connect(), stack="default")
    plan = make_plan(resources, ctx)            # read-only: ledger + batched reads + pure diffs
    print(render_plan(plan))
    result = converge(resources, ctx, command="invoke apply")   # show, lock, apply exactly that plan, verify, checks
    planfile.save(plan, "plan.json", target=..., folders=[...]); plan, data = planfile.load("plan.json")
"""

from __future__ import annotations

from typing import Any

from provisioning.applier import ApplyResult, apply_plan, apply_saved, converge
from provisioning.checks import run_checks
from provisioning.connection import client_options, connect, describe_target
from provisioning.context import Context, Options, Reporter, make_context
from provisioning.errors import (
    ClusterError,
    ConfigError,
    LockHeld,
    LockLost,
    ManifestError,
    NotConverged,
    Problem,
    ProvisioningError,
    Refused,
)
from provisioning.ledger import LEDGER_INDEX, Ledger
from provisioning.model import Change, FieldDiff, Hazard, Plan, Request, Resource, SourceLocation, Step
from provisioning.planner import StackPlan, destroy_plan, make_plan
from provisioning.report import plan_to_dict, plan_to_json, render_checks, render_plan, summary_line


def load_manifests(manifest_dir: Any, **kwargs: Any) -> list[Resource]:
    """Render, parse and validate the manifests (provisioning.manifests.load_manifests)."""
    from provisioning.manifests import load_manifests as _load

    return _load(manifest_dir, **kwargs)


def render_manifests(manifest_dir: Any, **kwargs: Any) -> dict[str, str]:
    from provisioning.manifests import render_manifests as _render

    return _render(manifest_dir, **kwargs)


__all__ = [
    "LEDGER_INDEX", "ApplyResult", "Change", "ClusterError", "ConfigError", "Context", "FieldDiff", "Hazard",
    "Ledger", "LockHeld", "LockLost", "ManifestError", "NotConverged", "Options", "Plan", "Problem",
    "ProvisioningError", "Refused", "Reporter", "Request", "Resource", "SourceLocation", "StackPlan", "Step",
    "apply_plan", "apply_saved", "client_options", "connect", "converge", "describe_target", "destroy_plan",
    "load_manifests", "make_context", "make_plan", "plan_to_dict", "plan_to_json", "render_checks",
    "render_manifests", "render_plan", "run_checks", "summary_line",
]
