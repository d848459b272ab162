"""`invoke import`: manifests for what already exists in a cluster, and `invoke stacks`: the stacks it records.

import_existing() reads existing indices (settings, mappings, aliases), trained models and inference endpoints in a
fixed number of requests and writes one plain-YAML manifest per object, its values normalised as the kinds compare
them, so that planning the written manifests shows no difference (only "adopt", when written with `adopt: true`).
Documents are not exported. By default it takes everything the tool could manage that no stack owns: objects
carrying an es-stack owner marker or recorded in any stack's ledger are left out, as are hidden and system indices,
preconfigured endpoints (`.`-prefixed) and built-in models.

Nothing here decides ownership: adopting the written manifests is the lifecycle's rule (provisioning/lifecycle.py).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import ApiError, NotFoundError

from provisioning.errors import ConfigError, api_error
from provisioning.kinds.index import MANAGED_BY
from provisioning.kinds.index_rules import MANAGED_META_KEYS
from provisioning.ledger import LEDGER_INDEX, MAX_ENTRIES
from provisioning.model_import import importer

# Flat index settings Elasticsearch sets itself (GET <index>/_settings?flat_settings=true): never declared.
INTERNAL_SETTINGS = re.compile(r"^index\.(uuid|creation_date|provided_name|version\..*|history\.uuid|resize\..*|"
                               r"shrink\..*|routing\.allocation\.initial_recovery\..*|blocks\.write)$")
# Models Elasticsearch ships (not uploaded by anyone): never imported.
BUILT_IN_MODELS = frozenset({"lang_ident_model_1"})
KIND_ORDER = ("trained_model", "inference_endpoint", "index")


@dataclass
class Imported:
    """One manifest document to write."""

    kind: str
    name: str
    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # YAML comments above the document

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


# ---- what the ledger records ------------------------------------------------------------------------------------
def _ledger_docs(client: Any) -> list[dict[str, Any]]:
    try:
        resp = client.search(index=LEDGER_INDEX, query={"terms": {"type": ["resource", "lock"]}}, size=MAX_ENTRIES)
    except NotFoundError:
        return []
    except ApiError as exc:
        raise api_error(exc, resource=f"ledger {LEDGER_INDEX}", doing="reading the ownership ledger") from exc
    return [hit["_source"] for hit in resp["hits"]["hits"]]


def recorded_objects(client: Any) -> dict[tuple[str, str], str]:
    """(kind, name) -> the stack whose ledger records it, for every stack."""
    return {(d["kind"], d["name"]): d["stack"] for d in _ledger_docs(client) if d.get("type") == "resource"}


def stacks(client: Any) -> list[dict[str, Any]]:
    """Every stack the cluster's ledger records: name, resource counts per kind, adopted count, lock holder."""
    found: dict[str, dict[str, Any]] = {}
    for doc in _ledger_docs(client):
        entry = found.setdefault(doc["stack"], {"stack": doc["stack"], "resources": {}, "adopted": 0, "lock": None})
        if doc.get("type") == "lock":
            entry["lock"] = {k: doc.get(k) for k in ("holder", "command", "acquired_at", "expires_at")}
        else:
            entry["resources"][doc["kind"]] = entry["resources"].get(doc["kind"], 0) + 1
            entry["adopted"] += bool(doc.get("adopted"))
    return [found[name] for name in sorted(found)]


# ---- normalisation: values as the kinds compare them ---------------------------------------------------------------
def _scalar(value: Any) -> Any:
    """ES answers settings as strings; "1" and 1 compare equal (diffing.scalar_equal): written as YAML numbers."""
    if isinstance(value, str):
        if re.fullmatch(r"-?\d+", value):
            return int(value)
        if value in ("true", "false"):
            return value == "true"
    return value


def index_settings(flat: dict[str, Any]) -> dict[str, Any]:
    """Flat settings minus what ES sets itself, nested without the `index.` prefix (the manifests' style, and where
    the validation looks for analysis components)."""
    nested: dict[str, Any] = {}
    for key, value in sorted(flat.items()):
        if INTERNAL_SETTINGS.match(key):
            continue
        *parents, leaf = key.removeprefix("index.").split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [_scalar(v) for v in value] if isinstance(value, list) else _scalar(value)
    return nested


def index_mappings(mappings: dict[str, Any]) -> dict[str, Any]:
    out = dict(mappings or {})
    meta = {k: v for k, v in (out.pop("_meta", None) or {}).items() if k not in MANAGED_META_KEYS}
    if meta:
        out["_meta"] = meta
    return out


def hub_guess(model_id: str) -> str:
    """The hub id eland derived `model_id` from, as best it can be told: eland lower-cases and turns "/" into "__"
    (provisioning.kinds.trained_model.eland_model_id), so the case is lost."""
    return model_id.replace("__", "/", 1)


# ---- reading the cluster ------------------------------------------------------------------------------------------
def _matches(kind: str, name: str, patterns: list[str]) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(f"{kind}/{name}" if "/" in p else name, p) for p in patterns)


def read_existing(client: Any, patterns: Iterable[str] = ()) -> tuple[list[Imported], list[str]]:
    """(importable objects, what was left out and why). Patterns (fnmatch: `movies*`, or `kind/name`) select by
    name; without any, every object the tool could manage that no stack owns."""
    patterns = list(patterns)
    owned = recorded_objects(client)
    found: list[Imported] = []
    skipped: list[str] = []

    def owner(kind: str, name: str, marker: str | None) -> str | None:
        return marker or owned.get((kind, name))

    # indices: one GET of every open, visible index (hidden and system indices are not the tool's to manage)
    indices = client.indices.get(index="*", flat_settings=True, allow_no_indices=True, ignore_unavailable=True).body
    endpoints = [e for e in client.inference.get(inference_id="_all").body.get("endpoints", [])
                 if not str(e.get("inference_id", "")).startswith(".")]
    endpoint_deployments = {(e.get("service_settings") or {}).get("deployment_id") or e["inference_id"]
                            for e in endpoints}
    configs = client.ml.get_trained_models(model_id="*", size=10_000, allow_no_match=True).body
    stats = client.ml.get_trained_models_stats(model_id="*", size=10_000, allow_no_match=True).body
    deployments: dict[str, list[dict[str, Any]]] = {}
    for entry in stats.get("trained_model_stats", []):
        if entry.get("deployment_stats"):
            deployments.setdefault(entry["model_id"], []).append(entry["deployment_stats"])

    for config in configs.get("trained_model_configs", []):
        model_id = config["model_id"]
        if model_id in BUILT_IN_MODELS or config.get("model_type") != "pytorch" or \
                not _matches("trained_model", model_id, patterns):
            continue
        managed_by, stack = importer.owner(config)
        who = owner("trained_model", model_id, stack if managed_by == importer.MANAGED_BY else None)
        if who:
            skipped.append(f"trained_model/{model_id}: owned by stack {who!r}")
            continue
        task_type = next(iter(config.get("inference_config") or {}), None)
        recorded = importer.recorded(config)
        notes = []
        if recorded.get("source"):
            source = dict(recorded["source"])
        else:
            source = {"hub": hub_guess(model_id)}
            notes.append("source: GUESSED from the model id (eland's id keeps no provenance): declare the hub id or "
                         "local directory you uploaded it from; adopting records it as this model's source")
        spec: dict[str, Any] = {"task_type": task_type, "source": source}
        own = [d for d in deployments.get(model_id, []) if d.get("deployment_id") not in endpoint_deployments]
        if len(own) == 1:  # a deployment no endpoint made (eland_import_hub_model --start)
            d = own[0]
            spec["deployment"] = {k: d[k] for k in ("deployment_id", "number_of_allocations",
                                                    "threads_per_allocation", "priority") if d.get(k) is not None}
        elif own:
            notes.append(f"{len(own)} deployments no endpoint uses are not declared (a manifest declares one)")
        found.append(Imported("trained_model", model_id, spec, notes))

    for endpoint in endpoints:
        inference_id = endpoint["inference_id"]
        if not _matches("inference_endpoint", inference_id, patterns):
            continue
        who = owner("inference_endpoint", inference_id, None)
        if who:
            skipped.append(f"inference_endpoint/{inference_id}: owned by stack {who!r}")
            continue
        spec = {"task_type": endpoint.get("task_type"), "service": endpoint.get("service"),
                "service_settings": dict(endpoint.get("service_settings") or {})}
        for key in ("task_settings", "chunking_settings"):
            if endpoint.get(key):
                spec[key] = endpoint[key]
        notes = ["secrets (api keys) are never returned by Elasticsearch: declare them as `secrets: {api_key: "
                 "{env: VARIABLE}}` if the service needs one"] if endpoint.get("service") not in (
                     "elasticsearch", "elser") else []
        found.append(Imported("inference_endpoint", inference_id, spec, notes))

    for physical, data in sorted(indices.items()):
        if physical.startswith(".") or physical == LEDGER_INDEX or not _matches("index", physical, patterns):
            continue
        meta = (data.get("mappings") or {}).get("_meta") or {}
        marker = meta.get("stack") if meta.get("managed_by") == MANAGED_BY else None
        aliases = data.get("aliases") or {}
        recorded_alias = next((a for a in aliases if owned.get(("index", a))), None)
        who = owner("index", physical, marker) or (owned.get(("index", recorded_alias)) if recorded_alias else None)
        if who:
            skipped.append(f"index/{physical}: owned by stack {who!r}")
            continue
        spec = {"settings": index_settings(data.get("settings") or {}),
                "mappings": index_mappings(data.get("mappings") or {})}
        if aliases:
            spec["aliases"] = {a: dict(p or {}) for a, p in sorted(aliases.items())}
        found.append(Imported("index", physical, spec, ["a concrete index: adopted as it is; the first change that "
                                                        "needs a new index migrates it behind an alias of its name"]))
    found.sort(key=lambda i: (KIND_ORDER.index(i.kind), i.name))
    return found, skipped


# ---- writing ------------------------------------------------------------------------------------------------------
def manifest_text(item: Imported, *, adopt: bool) -> str:
    document: dict[str, Any] = {"kind": item.kind, "name": item.name}
    if adopt:
        document["adopt"] = True
    document["spec"] = item.spec
    header = [f"# Imported from the cluster by `invoke import`: {item.key}."]
    header += [f"# {note}" for note in item.notes]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=110)
    return "\n".join(header) + "\n" + body


def file_name(item: Imported) -> str:
    return f"{item.kind}.{re.sub(r'[^A-Za-z0-9_.-]', '_', item.name)}.yaml"


def import_existing(client: Any, out: str | Path, *, names: Iterable[str] = (), adopt: bool = False
                    ) -> tuple[list[Path], list[str]]:
    """Write a manifest per importable object into `out` (created if needed; an existing manifest file is never
    overwritten). Returns (files written, objects left out with why)."""
    folder = Path(out)
    found, skipped = read_existing(client, names)
    if not found:
        raise ConfigError("nothing to import: no object matches that no stack owns"
                          + (f" ({'; '.join(skipped)})" if skipped else ""))
    clashes = [folder / file_name(i) for i in found if (folder / file_name(i)).exists()]
    if clashes:
        raise ConfigError(f"{', '.join(map(str, clashes))} already exist; import into an empty folder or remove them")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for item in found:
        path = folder / file_name(item)
        path.write_text(manifest_text(item, adopt=adopt), encoding="utf-8")
        written.append(path)
    return written, skipped
