"""Helpers for the engine tests: contexts on the sandbox, resources built in code, the sandbox request log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisioning import Options, Reporter, make_context
from provisioning.model import Resource, SourceLocation


def ctx_for(es: Any, stack: str = "test", **options: Any):
    return make_context(es, stack=stack, options=Options(**options), reporter=Reporter(quiet=True))


def index(name: str, settings: dict | None = None, mappings: dict | None = None, aliases: dict | None = None,
          **extra: Any) -> Resource:
    spec: dict[str, Any] = {}
    if settings is not None:
        spec["settings"] = settings
    if mappings is not None:
        spec["mappings"] = mappings
    if aliases is not None:
        spec["aliases"] = aliases
    return Resource("index", name, spec, SourceLocation("manifests/test.yaml", 1), **extra)


def documents(name: str, target: str, path: Path, id_field: str = "id", **extra: Any) -> Resource:
    manifest = path.parent / "manifest.yaml"
    return Resource("documents", name, {"index": target, "source": path.name, "id_field": id_field},
                    SourceLocation(str(manifest), 3), **extra)


def check(name: str, target: str, request: dict, expect: dict, run: str = "after_apply") -> Resource:
    return Resource("check", name, {"index": target, "request": request, "expect": expect, "run": run},
                    SourceLocation("manifests/checks.yaml", 5))


def write_docs(path: Path, docs: list[dict]) -> Path:
    path.write_text(json.dumps(docs))
    return path


def requests_since(sandbox: Any, seq: int) -> list[dict[str, Any]]:
    return sandbox.log.entries(seq)


def writes_since(sandbox: Any, seq: int) -> list[dict[str, Any]]:
    return [e for e in sandbox.log.entries(seq) if e["write"]]


MOVIE_MAPPINGS = {"properties": {"title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
                                 "year": {"type": "integer"}, "plot": {"type": "text"}}}
