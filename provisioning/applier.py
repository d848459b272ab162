"""apply_plan: run exactly the operations of a plan, in its order, after checking it still rests on the live state.

- Before the first write: data loss needs --allow-data-loss (on the command, or recorded in the saved plan); the
  cluster must be the one planned against; every change's fingerprint (its live object and ownership record, read
  again in the plan's fixed number of requests) must equal the planned one, else nothing is written and the
  message names what changed.
- A wave runs its changes in a ThreadPoolExecutor bounded by ctx.options.parallelism; the next wave starts only
  when the whole wave succeeded. Each change runs its operations in order (provisioning/operations.py). The
  first failed wave stops the run with a ClusterError naming each failed resource, its manifest location and
  Elasticsearch's reason.
- Read-after-write: the touched resources are planned again; anything still differing raises NotConverged.
- Checks (post-apply assertions) run after everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError

from provisioning import lifecycle
from provisioning.checks import run_checks
from provisioning.errors import ClusterError, NotConverged, ProvisioningError, Refused, api_error
from provisioning.kinds import KINDS
from provisioning.model import Change, Resource
from provisioning.operations import Run, run_operation
from provisioning.planner import StackPlan, _read_all, make_plan


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    plan: StackPlan | None = None

    @property
    def checks_failed(self) -> bool:
        return any(getattr(c, "ok", True) is False for c in self.checks)


# ---- before the first write ------------------------------------------------------------------------------------
def data_loss_refusal(plan: StackPlan, ctx: Any) -> None:
    if plan.allow_data_loss or ctx.options.allow_data_loss:
        return
    losses = [f"{c.key}: {h.message}" for c, h in plan.hazards if h.kind == "data_loss"]
    if losses:
        raise Refused("the plan loses data; nothing was changed. Pass --allow-data-loss if you mean it:\n  - "
                      + "\n  - ".join(losses))


def stale_changes(plan: StackPlan, ctx: Any) -> list[str]:
    """What changed in the cluster since the plan was made (empty: the plan still holds). Read-only."""
    managed = [r for r in plan.resources if r.kind in KINDS]
    ctx.ledger.load(sorted({r.name for r in managed} | {c.name for c in plan.changes}))
    planned = plan.cluster.get("ledger_id")
    if plan.saved and planned != ctx.ledger.identity and not (planned is None and ctx.ledger.identity_is_ours):
        return [f"the cluster is not the one the plan was made against (ledger {planned or 'absent'} then, "
                f"{ctx.ledger.identity or 'absent'} now)"]
    live = _read_all(managed, ctx)  # owned objects no longer declared are read through the ledger
    stale = []
    for change in plan.changes:
        obj = live.get(change.kind, {}).get(change.name)
        now = lifecycle.fingerprint(change.kind, obj, ctx.ledger.entry(change.kind, change.name))
        if now != change.fingerprint:
            state = "is gone" if obj is None and change.action != "create" else \
                "now exists" if change.action == "create" and obj is not None else "changed"
            stale.append(f"{change.key} {state} since the plan was made")
    return stale


def check_preconditions(plan: StackPlan, ctx: Any) -> None:
    data_loss_refusal(plan, ctx)
    stale = stale_changes(plan, ctx)
    if stale:
        raise Refused("the plan no longer matches the cluster; nothing was changed. Make a new plan:\n  - "
                      + "\n  - ".join(stale))


# ---- running the operations -------------------------------------------------------------------------------------
def _run_change(ctx: Any, change: Change) -> None:
    if ctx.ledger is not None:
        ctx.ledger.check_lock()  # a run whose lock was broken or taken over stops before its next change
    ctx.reporter.change_started(change.key, change.action)  # timed; on Ctrl-C the CLI says what was in flight
    try:
        _run_operations(ctx, change)
    except ProvisioningError:
        ctx.reporter.change_failed(change.key)
        raise
    ctx.reporter.change_finished(change.key, change.action)


def _run_operations(ctx: Any, change: Change) -> None:
    location = str(change.resource.source) if change.resource is not None else None
    had_entry = ctx.ledger.entry(change.kind, change.name) is not None
    run = Run(ctx, change, salt=change.record.get("secrets_salt"))
    creating = lifecycle.first_request(change)
    for operation in change.operations:
        try:
            run_operation(run, operation)
        except ApiError as exc:
            if operation is creating and lifecycle.after_failed_create(ctx, change, exc, had_entry):
                continue
            raise api_error(exc, resource=change.key, location=location, doing=change.action) from exc
        except TransportError as exc:  # no answer at all after the client's retries
            raise ClusterError(f"{change.action}: cannot reach Elasticsearch: {exc.message}", resource=change.key,
                               location=location) from exc
        except ClusterError as exc:
            if exc.resource is None:  # the message is built at construction: a new error, so it names the resource
                raise ClusterError(str(exc), status=exc.status, es_type=exc.es_type, resource=change.key,
                                   location=location) from exc
            raise


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
    """Read-after-write: a fresh plan of the same resources must show no change for what we touched."""
    if not touched:
        return
    again = make_plan(plan.resources, ctx, destroy=plan.destroy)
    keys = {c.key for c in touched}
    # an adoption or a move only records (and renames): differences from the manifest it showed are planned next
    recorded_only = {c.key for c in touched if c.action in ("adopt", "move")}
    left = [c for c in again.changes if c.key in recorded_only and c.action in ("update", "replace")]
    for change in left:
        ctx.reporter.warn(f"{change.key} is now owned by stack {ctx.stack!r}; its differences from the manifest "
                          f"({', '.join(d.path for d in change.diffs)}) are planned by the next plan/apply")
    still = [c for c in again.changes if c.key in keys and c.action != "noop" and c not in left]
    if still:
        details = "; ".join(f"{c.key} would still {c.action}" + (
            f" ({', '.join(d.path for d in c.diffs)})" if c.diffs else "") for c in still)
        raise NotConverged(f"the cluster does not match the manifests after apply: {details}")


def apply_plan(plan: StackPlan, ctx: Any, *, run_after: bool = True) -> ApplyResult:
    """Apply a plan (the caller holds the stack lock): preconditions, the operations, verification, checks."""
    check_preconditions(plan, ctx)
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
    if run_after and not plan.destroy:
        result.checks = run_checks(ctx, plan.resources)
    return result


def converge(resources: list[Resource], ctx: Any, *, command: str, destroy: bool = False,
             confirm: Callable[[StackPlan], bool] = lambda plan: True,
             show: Callable[[StackPlan], None] = lambda plan: None) -> ApplyResult | None:
    """Plan, show, confirm, lock, apply exactly the plan shown (refused if the cluster changed meanwhile).
    Returns None when the user declined.

    A no-op apply writes nothing at all (not even the lock); a plan while another LIVE run holds the lock is refused.
    An expired lock, left by a run that died, is taken over by the acquire, or removed by a no-op apply (warnings).
    """
    plan = make_plan(resources, ctx, destroy=destroy)
    return apply_saved(plan, ctx, command=command, confirm=confirm, show=show)


def apply_saved(plan: StackPlan, ctx: Any, *, command: str,
                confirm: Callable[[StackPlan], bool] = lambda plan: True,
                show: Callable[[StackPlan], None] = lambda plan: None) -> ApplyResult | None:
    """Show, confirm, lock and apply a plan made earlier (in this process, or loaded from a plan file)."""
    holder = ctx.ledger.lock_holder
    if holder is not None and not ctx.ledger.lock_expired(holder):
        raise ctx.ledger.lock_held_error(holder)
    show(plan)
    if not plan.has_changes:
        if holder is not None:  # expired (a live holder was refused above): a dead run's leftover
            ctx.ledger.clear_expired_lock(warn=ctx.reporter.warn)
        result = ApplyResult(plan=plan)
        if not plan.destroy:
            result.checks = run_checks(ctx, plan.resources)
        return result
    if plan.saved:
        check_preconditions(plan, ctx)  # a stale saved plan is refused before the lock is even taken
    data_loss_refusal(plan, ctx)  # before asking: a confirmation cannot allow it
    if not confirm(plan):
        return None
    with ctx.ledger.locked(command, lease=ctx.options.lock_lease, warn=ctx.reporter.warn):
        return apply_plan(plan, ctx)  # checks again, under the lock
