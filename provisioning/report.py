"""Plan output: readable text (rich colour on a terminal, plain otherwise) and stable JSON for machines.

Symbols follow Terraform: + create, ~ update, -/+ replace, - delete, <= adopt (an existing object becomes the
stack's: a ledger record only), -> move (re-keyed under a new name, `moved_from`); hazards are marked `!` (data
loss) and `~` (service interruption) and listed first; checks are listed as checks that will run. `show_requests`
prints each change's operations (the requests apply sends, and its named steps).
Sensitive values never reach the output: FieldDiff.sensitive values print as "(sensitive value)", every value
goes through diffing.redact, and request bodies hold secrets only as markers naming their variable.
"""

from __future__ import annotations

import io
import json
from typing import Any

from provisioning.diffing import MASK, flatten, redact
from provisioning.model import HAZARD_SYMBOLS, Change, FieldDiff, Plan, Request

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "noop": " ", "adopt": "<=", "move": "->"}
STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "noop": "dim",
          "adopt": "cyan", "move": "cyan"}
MAX_VALUE = 160
MAX_CREATE_LINES = 12  # a created resource's declared leaves shown in the plan
JSON_FORMAT_VERSION = 2


def _value(value: Any, sensitive: bool) -> str:
    if sensitive:
        return MASK
    if value is None:
        return "(none)"
    text = json.dumps(redact(value), sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def _location(change: Change) -> str:
    return str(change.resource.source) if change.resource is not None else "no longer declared"


def _checks(plan: Plan) -> list[Any]:
    return list(getattr(plan, "checks", []))  # StackPlan.checks: the declared checks that will run


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    hazards = plan.hazards
    loss = sum(1 for _, h in hazards if h.kind == "data_loss")
    outage = sum(1 for _, h in hazards if h.kind == "interruption")
    extra = (f" {loss} losing data, {outage} interrupting service." if hazards else "")
    return (f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
            f"{counts['delete']} to delete.{extra}"
            + "".join(f" {counts[a]} to {a}." for a in ("adopt", "move") if counts.get(a)))


def _diff_line(d: FieldDiff) -> tuple[str, str]:
    if d.before is None:
        text, style = f"+ {d.path}: {_value(d.after, d.sensitive)}", "green"
    elif d.after is None:
        text, style = f"- {d.path}: {_value(d.before, d.sensitive)}", "red"
    else:
        text, style = f"~ {d.path}: {_value(d.before, d.sensitive)} -> {_value(d.after, d.sensitive)}", "yellow"
    if d.forces_replacement:
        text += "  # forces replacement"
    return text, style


def _print_spec(console: Any, spec: dict[str, Any]) -> None:
    """What a create declares, one leaf per line (Terraform shows the attributes of a new resource)."""
    from rich.text import Text

    leaves = flatten(redact(spec))
    for path, value in list(leaves.items())[:MAX_CREATE_LINES]:
        console.print(Text(f"        + {path}: {_value(value, False)}", style="green"))
    if len(leaves) > MAX_CREATE_LINES:
        console.print(Text(f"        ... and {len(leaves) - MAX_CREATE_LINES} more", style="dim"))


def _operation_lines(change: Change) -> list[str]:
    lines = []
    for op in change.operations:
        if isinstance(op, Request):
            lines.append(f"> {op.describe()}")
            if op.body is not None:
                body = json.dumps(redact(op.body), sort_keys=True, ensure_ascii=False, default=str)
                lines.append(f"    {body if len(body) <= 4 * MAX_VALUE else body[: 4 * MAX_VALUE - 3] + '...'}")
        else:
            lines.append(f"> [{op.name}] {op.summary}")
    return lines


def render_plan(plan: Plan, *, color: bool | None = None, width: int = 120, show_noop: bool = False,
                show_requests: bool = False, title: str | None = None) -> str:
    """The plan as text, with ANSI colour only when `color` is true (tasks.py passes sys.stdout.isatty())."""
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=bool(color), no_color=not color, width=width,
                      highlight=False, soft_wrap=True)
    title = title or ("destroy plan" if getattr(plan, "destroy", False) else "plan")
    console.print(Text(f"Stack {getattr(plan, 'stack', 'default')!r}: {title}", style="bold"))
    changes = [c for c in plan.changes if c.action != "noop"]
    if not changes:
        console.print("No changes. The cluster matches the manifests.")
    if plan.hazards:
        console.print(Text("Destructive changes:", style="bold red"))
        for change, hazard in plan.hazards:
            style = "bold red" if hazard.kind == "data_loss" else "yellow"
            console.print(Text(f"  {HAZARD_SYMBOLS[hazard.kind]} {change.key}: {hazard.message}", style=style))
    for change in changes:
        line = Text()
        marks = "".join(sorted({HAZARD_SYMBOLS[h.kind] for h in change.hazards}))
        symbol = f"{marks} {SYMBOLS[change.action]}" if marks else SYMBOLS[change.action]
        line.append(f"{symbol:>5} ", style=STYLES[change.action])
        line.append(change.key, style=f"bold {STYLES[change.action]}")
        line.append(f"  {change.action}  ({_location(change)})", style="dim")
        console.print(line)
        if change.reason:
            console.print(Text(f"        {change.reason}", style="dim"))
        for d in change.diffs:
            text, style = _diff_line(d)
            console.print(Text(f"        {text}", style=style))
        if change.action == "create" and change.resource is not None and not change.diffs:
            _print_spec(console, change.resource.spec)
        if show_requests:
            for text in _operation_lines(change):
                console.print(Text(f"        {text}", style="cyan"))
    if show_noop:
        for change in plan.changes:
            if change.action == "noop":
                console.print(Text(f"      {change.key}  unchanged", style="dim"))
    for resource in [] if getattr(plan, "destroy", False) else _checks(plan):
        when = "after apply" if resource.spec.get("run", "after_apply") == "after_apply" else "on `invoke check`"
        console.print(Text(f"    ? {resource.key}  runs {when}", style="cyan"))
    for warning in getattr(plan, "warnings", []):
        console.print(Text(f"warning: {warning}", style="bold yellow"))
    console.print(Text(summary_line(plan), style="bold"))
    return buffer.getvalue()


def diff_dict(d: FieldDiff) -> dict[str, Any]:
    return {"path": d.path, "before": MASK if d.sensitive else redact(d.before),
            "after": MASK if d.sensitive else redact(d.after), "sensitive": d.sensitive,
            "forces_replacement": d.forces_replacement}


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """Stable machine output (keys and order do not change without bumping format_version; README "--json")."""
    changes = []
    for change in plan.changes:
        changes.append({
            "key": change.key, "kind": change.kind, "name": change.name, "action": change.action,
            "reason": change.reason,
            "location": str(change.resource.source) if change.resource is not None else None,
            "desired": redact(change.resource.spec) if change.resource is not None and change.action != "delete"
            else None,
            "diffs": [diff_dict(d) for d in change.diffs],
            "hazards": [h.to_dict() for h in change.hazards],
            "operations": [redact(op.to_dict()) for op in change.operations],
        })
    return {"format_version": JSON_FORMAT_VERSION, "stack": getattr(plan, "stack", None),
            "destroy": getattr(plan, "destroy", False), "has_changes": plan.has_changes,
            "summary": plan.counts(),
            "hazards": [{"key": c.key, **h.to_dict()} for c, h in plan.hazards],
            "warnings": list(getattr(plan, "warnings", [])),
            "changes": changes,
            "checks": [{"key": r.key, "location": str(r.source), "run": r.spec.get("run", "after_apply")}
                       for r in _checks(plan)]}


def plan_to_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False, ensure_ascii=False, default=str)


def hits_total(response: dict[str, Any]) -> int:
    """hits.total as a number; the number of hits returned when ES omits it (track_total_hits: false)."""
    hits = response.get("hits", {})
    total = hits.get("total", {})
    return total.get("value", len(hits.get("hits", []))) if isinstance(total, dict) else int(total or 0)


def render_hits(hits: list[dict[str, Any]], fields: list[str], *, indent: int = 0, width: int = 100) -> list[str]:
    """One line per hit: rank, score and the first field (or _id); the other fields below it, shortened."""
    pad = " " * indent
    lines = []
    for rank, hit in enumerate(hits, 1):
        source = hit.get("_source") or {}
        score = hit.get("_score")
        head = f"{rank:>3}. {score:8.4f}" if isinstance(score, int | float) else f"{rank:>3}. {'-':>8}"
        title, *rest = fields or ["_id"]
        lines.append(f"{pad}{head}  {source.get(title, hit.get('_id'))}")
        for name in rest:
            text = str(source.get(name, ""))
            lines.append(f"{pad}{'':14}{text if len(text) <= width else text[: width - 3] + '...'}")
    return lines


def render_checks(results: list[Any], fields: tuple[str, ...] = ("title",)) -> str:
    """Each check's verdict, its expectations and its hits (the searches a reader wants to see after apply)."""
    lines = []
    for result in results:
        lines.append(f"check/{result.name}: {'passed' if result.ok else 'FAILED'} ({result.total} hits)")
        for e in result.expectations:
            lines.append(f"  {'ok  ' if e.ok else 'FAIL'} {e.description} ({e.detail})")
        lines += render_hits(result.hits, [f for f in fields if any(f in (h.get("_source") or {})
                                                                    for h in result.hits)], indent=2)
    return "\n".join(lines)
