"""Saved plans: `invoke plan --out PLANFILE` writes the plan as versioned JSON, `invoke apply --plan PLANFILE`
applies exactly it without rendering the manifests again.

The file holds everything apply needs and everything it checks before its first write:
- format, format_version, tool_version, plan_id, created_at, stack, destroy, allow_data_loss;
- cluster: the ledger id of the cluster planned against (the random id the tool keeps in its ledger index; null
  when the tool had never written to that cluster) and the target it was reached at (no credentials);
- manifests: the hash of the rendered manifests and of the manifest folder's files as they were;
- artifacts: per model, the identity planned (a local model's file hash, a hub id and revision);
- resources: the declared resources (spec, file and line; secrets only as the names of their variables);
- changes: per change its action, reason, field diffs, hazards, the fingerprint of the live state it rests on,
  and its operations (requests with secret markers, and named steps).
Apply refuses, before any write and saying what changed: another format version, another stack, another
cluster, edited manifest files, changed model files or data files (checked when their steps run, before their
first write), and any change whose live state moved (which also makes an applied plan unappliable: applying it
changed that state).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from provisioning.diffing import canonical_json
from provisioning.errors import Refused
from provisioning.model import Change, FieldDiff, Hazard, Resource, SourceLocation, operation_from_dict
from provisioning.planner import StackPlan
from provisioning.tool_files import read_tool_file

FORMAT = "es-stack-plan"
FORMAT_VERSION = 1
MANIFEST_SUFFIXES = (".yaml", ".yml", ".j2", ".json", ".ndjson", ".jsonl")


def tool_version() -> str:
    try:
        return metadata.version("es-stack")
    except metadata.PackageNotFoundError:
        return "unknown"


def sources_hash(folders: list[Path]) -> str:
    """sha256 over the relative names and bytes of the manifest and template files (what a reviewer read)."""
    digest = hashlib.sha256()
    for folder in folders:
        if not folder.is_dir():
            continue
        for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES):
            digest.update(file.relative_to(folder).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def rendered_hash(resources: list[Resource]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(
        [{"kind": r.kind, "name": r.name, "spec": r.spec, "protected": r.protected, "depends_on": r.depends_on}
         for r in resources]).encode()).hexdigest()


def _resource_dict(r: Resource) -> dict[str, Any]:
    return {"kind": r.kind, "name": r.name, "spec": r.spec, "file": r.source.file, "line": r.source.line,
            "depends_on": list(r.depends_on), "protected": r.protected, "lines": r.lines, "adopt": r.adopt,
            "moved_from": r.moved_from}


def _resource(data: dict[str, Any]) -> Resource:
    return Resource(data["kind"], data["name"], data["spec"], SourceLocation(data["file"], data.get("line")),
                    list(data.get("depends_on") or []), bool(data.get("protected")), dict(data.get("lines") or {}),
                    bool(data.get("adopt")), data.get("moved_from"))


def change_dict(change: Change) -> dict[str, Any]:
    from provisioning.report import diff_dict

    return {"key": change.key, "kind": change.kind, "name": change.name, "action": change.action,
            "reason": change.reason, "location": str(change.resource.source) if change.resource else None,
            "diffs": [diff_dict(d) for d in change.diffs], "hazards": [h.to_dict() for h in change.hazards],
            "fingerprint": change.fingerprint, "record": change.record,
            "operations": [op.to_dict() for op in change.operations]}


def to_dict(plan: StackPlan, *, target: str, folders: list[Path]) -> dict[str, Any]:
    artifacts = {c.key: c.record.get("identity") for c in plan.changes if c.record.get("identity")}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": tool_version(),
        "plan_id": uuid.uuid4().hex, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stack": plan.stack, "destroy": plan.destroy, "allow_data_loss": plan.allow_data_loss,
        "cluster": {**plan.cluster, "target": target},
        "manifests": {"rendered_hash": rendered_hash(plan.resources), "sources_hash": sources_hash(folders),
                      "folders": [str(f) for f in folders]},
        "artifacts": artifacts,
        "resources": [_resource_dict(r) for r in plan.resources],
        "waves": [[c.key for c in wave] for wave in plan.waves],
        "changes": [change_dict(c) for c in plan.changes],
    }


def save(plan: StackPlan, path: str | Path, *, target: str, folders: list[Path]) -> dict[str, Any]:
    data = to_dict(plan, target=target, folders=folders)
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")
    return data


def load(path: str | Path) -> tuple[StackPlan, dict[str, Any]]:
    data = read_tool_file(path, format_name=FORMAT, what="the plan file", expected="an es-stack plan file")
    if data.get("format_version") != FORMAT_VERSION:
        raise Refused(f"{path} has plan format version {data.get('format_version')}; this tool reads version "
                      f"{FORMAT_VERSION}: make the plan again with this version")
    resources = [_resource(r) for r in data["resources"]]
    by_key = {r.key: r for r in resources}
    changes = []
    for c in data["changes"]:
        changes.append(Change(
            c["kind"], c["name"], c["action"], [FieldDiff(**d) for d in c["diffs"]], c["reason"],
            by_key.get(c["key"]), None, [operation_from_dict(op) for op in c["operations"]],
            [Hazard(**h) for h in c["hazards"]], c["fingerprint"], dict(c.get("record") or {})))
    by_change = {c.key: c for c in changes}
    plan = StackPlan(changes=changes, waves=[[by_change[k] for k in wave] for wave in data["waves"]],
                     resources=resources, destroy=bool(data["destroy"]), stack=data["stack"],
                     allow_data_loss=bool(data["allow_data_loss"]), cluster=dict(data["cluster"]), saved=True)
    return plan, data


def refusals(data: dict[str, Any], *, stack: str, target: str | None) -> list[str]:
    """What makes a saved plan inapplicable before the cluster is even read."""
    problems = []
    if data["stack"] != stack:
        problems.append(f"the plan is for stack {data['stack']!r}, this run is for stack {stack!r}")
    planned = data["cluster"].get("target")
    if data["cluster"].get("ledger_id") is None and planned and planned != target:
        problems.append(f"the plan was made against {planned}, this run targets {target}")
    folders = [Path(f) for f in data["manifests"].get("folders") or []]
    if folders and all(f.is_dir() for f in folders) and sources_hash(folders) != data["manifests"]["sources_hash"]:
        problems.append(f"the manifest files in {', '.join(map(str, folders))} changed after the plan was made")
    return problems


def apply_file(path: str | Path, ctx: Any, *, target: str | None, command: str = "invoke apply --plan",
               confirm: Any = lambda plan: True, show: Any = lambda plan: None) -> Any:
    """Apply exactly the saved plan at `path`, or refuse before any write saying what changed."""
    from provisioning.applier import apply_saved

    plan, data = load(path)
    problems = refusals(data, stack=ctx.stack, target=target)
    if problems:
        raise Refused(f"the saved plan {path} cannot be applied; nothing was changed:\n  - " + "\n  - ".join(problems))
    ctx.ledger.load(sorted({c.name for c in plan.changes}))
    return apply_saved(plan, ctx, command=command, confirm=confirm, show=show)
