"""apply_plan: run a plan's waves in dependency order, independent changes concurrently, then verify.

- A wave runs its changes in a ThreadPoolExecutor bounded by ctx.options.parallelism; the next wave starts only
  when the whole wave succeeded. The first failed wave stops the run with a ClusterError naming each failed
  resource, its manifest location and Elasticsearch's reason.
- Read-after-write: the touched resources are planned again; anything still differing raises NotConverged
  (catches perpetual drift the first time it happens instead of on every later plan).
- Post-apply hooks (kinds with `after_apply`, i.e. checks) run after everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError

from provisioning.errors import ClusterError, NotConverged, ProvisioningError
from provisioning.kinds import KINDS
from provisioning.model import Change, Resource
from provisioning.planner import PROTECTED_PATH, StackPlan, api_error, make_plan


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)  # whatever the kinds' after_apply returned
    plan: StackPlan | None = None

    @property
    def checks_failed(self) -> bool:
        return any(getattr(c, "ok", True) is False for c in self.checks)


def _run_change(ctx: Any, change: Change) -> None:
    location = str(change.resource.source) if change.resource is not None else None
    if ctx.ledger is not None:
        ctx.ledger.check_lock()  # a run whose lock was broken or taken over stops before its next change
    if change.action == "delete" and change.live is None:
        ctx.ledger.forget(change.kind, change.name)  # already gone: only the ownership record remains
        return
    if change.action == "update" and change.diffs and all(d.path == PROTECTED_PATH for d in change.diffs):
        ctx.ledger.set_protected(change.kind, change.name, bool(change.diffs[0].after))
        return
    method = getattr(KINDS[change.kind], change.action)
    ctx.reporter.info(f"{change.key}: {change.action} ...")
    try:
        method(ctx, change)
    except ApiError as exc:
        raise api_error(exc, resource=change.key, location=location, doing=change.action) from exc
    except TransportError as exc:  # no answer at all after the client's retries
        raise ClusterError(f"{change.action}: cannot reach Elasticsearch: {exc.message}", resource=change.key,
                           location=location) from exc
    except ClusterError as exc:
        if exc.resource is None:  # the message is built at construction: a new error, so it names the resource
            raise ClusterError(str(exc), status=exc.status, es_type=exc.es_type, resource=change.key,
                               location=location) from exc
        raise
    ctx.reporter.info(f"{change.key}: {change.action} done")


def _run_wave(ctx: Any, wave: list[Change]) -> list[tuple[Change, BaseException]]:
    failures: list[tuple[Change, BaseException]] = []
    workers = max(1, min(int(ctx.options.parallelism), len(wave)))
    if workers == 1:
        for change in wave:
            try:
                _run_change(ctx, change)
            except ProvisioningError as exc:
                failures.append((change, exc))
        return failures
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        futures = [(change, pool.submit(_run_change, ctx, change)) for change in wave]
        for change, future in futures:
            exc = future.exception()
            if exc is not None:
                if not isinstance(exc, ProvisioningError):
                    raise exc  # a bug, not a cluster answer: surface the traceback
                failures.append((change, exc))
    return failures


def _raise_failures(failures: list[tuple[Change, BaseException]], done: list[Change]) -> None:
    first = failures[0][1]
    if len(failures) == 1 and not done:
        raise first
    lines = [str(exc) for _, exc in failures]
    if done:
        lines.append("applied before the failure: " + ", ".join(c.key for c in done))
    error = ClusterError("apply stopped:\n  - " + "\n  - ".join(lines))
    if isinstance(first, ClusterError):
        error.status, error.es_type = first.status, first.es_type
    raise error from first


def verify(plan: StackPlan, ctx: Any, touched: list[Change]) -> None:
    """Read-after-write: a fresh plan of the same manifests must show no change for what we touched."""
    if not touched:
        return
    again = make_plan(plan.resources, ctx, destroy=plan.destroy)
    keys = {c.key for c in touched}
    still = [c for c in again.changes if c.key in keys and c.action != "noop"]
    if still:
        details = "; ".join(f"{c.key} would still {c.action}" + (
            f" ({', '.join(d.path for d in c.diffs)})" if c.diffs else "") for c in still)
        raise NotConverged(f"the cluster does not match the manifests after apply: {details}")


def run_after_apply(plan: StackPlan, ctx: Any, *, manual: bool = False) -> list[Any]:
    """Post-apply hooks (checks), after every other change. manual=True runs all of them (`invoke check`)."""
    results = []
    for resource in plan.resources:
        hook = getattr(KINDS[resource.kind], "after_apply", None)
        if hook is not None:
            try:
                outcome = hook(ctx, resource, manual=manual)
            except ApiError as exc:
                raise api_error(exc, resource=resource.key, location=str(resource.source), doing=resource.kind) from exc
            if outcome is not None:
                results.append(outcome)
    return results


def apply_plan(plan: StackPlan, ctx: Any, *, run_checks: bool = True) -> ApplyResult:
    """Apply a plan made by make_plan with the same ctx (the caller holds the stack lock)."""
    ctx.plan = plan
    done: list[Change] = []
    for wave in plan.waves:
        if ctx.ledger is not None:
            ctx.ledger.check_lock()  # LockLost, unwrapped: the lock was broken or taken over during the last wave
        failures = _run_wave(ctx, wave)
        done += [c for c in wave if all(c is not f for f, _ in failures)]
        if failures:
            _raise_failures(failures, done)
    verify(plan, ctx, done)
    result = ApplyResult(applied=done, plan=plan)
    if run_checks and not plan.destroy:
        result.checks = run_after_apply(plan, ctx)
    return result


def same_plan(a: StackPlan, b: StackPlan) -> bool:
    summary = lambda p: [(c.key, c.action) for c in p.changes if c.action != "noop"]  # noqa: E731
    return summary(a) == summary(b)


def converge(resources: list[Resource], ctx: Any, *, command: str, destroy: bool = False,
             confirm: Callable[[StackPlan], bool] = lambda plan: True,
             show: Callable[[StackPlan], None] = lambda plan: None) -> ApplyResult | None:
    """Plan, show, confirm, lock, re-plan under the lock, apply. Returns None when the user declined.

    A no-op apply writes nothing at all (not even the lock); a plan while another LIVE run holds the lock is refused.
    An expired lock, left by a run that died, is taken over by the acquire, or removed by a no-op apply (warnings).
    """
    plan = make_plan(resources, ctx, destroy=destroy)
    holder = ctx.ledger.lock_holder
    if holder is not None and not ctx.ledger.lock_expired(holder):
        raise ctx.ledger.lock_held_error(holder)
    show(plan)
    if not plan.has_changes:
        if holder is not None:  # expired (a live holder was refused above): a dead run's leftover
            ctx.ledger.clear_expired_lock(warn=ctx.reporter.warn)
        result = ApplyResult(plan=plan)
        if not destroy:
            result.checks = run_after_apply(plan, ctx)
        return result
    if not confirm(plan):
        return None
    with ctx.ledger.locked(command, lease=ctx.options.lock_lease, warn=ctx.reporter.warn):
        locked_plan = make_plan(resources, ctx, destroy=destroy)
        if not same_plan(plan, locked_plan):
            raise ClusterError("the cluster changed between the plan and the apply (another run?); "
                               "nothing was applied: run the command again to see the new plan")
        return apply_plan(locked_plan, ctx)
