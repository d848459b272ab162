"""Where a model comes from (ModelSource), the cache key of its traced artifact, and the on-disk artifact cache.

Light on purpose (stdlib only): the planner computes a source's identity and cache key to compare with what the
cluster recorded, without tracing and without importing torch (versions come from package metadata, not imports).

Layout: <cache_dir>/models/<key>/{traced_pytorch_model.pt, config.json, vocabulary.json, artifact.json}.
An entry appears atomically (traced into a temporary directory, then renamed), so a crash never leaves a half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

MODEL_FILE = "traced_pytorch_model.pt"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocabulary.json"
ARTIFACT_FILE = "artifact.json"
_BLOCK = 1 << 20


@cache
def library_versions() -> dict[str, str]:
    """eland and torch versions from package metadata: reading them does not import torch."""
    versions = {}
    for package in ("eland", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _model_files(path: Path) -> list[tuple[str, Path]]:
    files = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if not any(part.startswith(".") for part in rel.parts):
            files.append((rel.as_posix(), file))
    return files


def directory_fingerprint(path: Path) -> str:
    """sha256 over the relative names and contents of a local model directory (hidden entries skipped), so editing
    or retraining a local model is seen as a new revision without tracing it. Memoised on the files' stat data:
    plan, the re-plan under the lock and the read-after-write check hash a large directory once."""
    files = _model_files(path)
    signature = tuple((rel, f.stat().st_size, f.stat().st_mtime_ns) for rel, f in files)
    return _fingerprint(str(path), signature)


@cache
def _fingerprint(path: str, signature: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for rel, _size, _mtime in signature:
        digest.update(rel.encode() + b"\0")
        digest.update(sha256_file(Path(path) / rel).encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSource:
    """A trained_model's declared origin: a hub id (optional revision, optional token env var) or a local directory."""

    task_type: str
    hub: str | None = None
    revision: str | None = None
    token_env: str | None = None
    declared_path: str | None = None  # as written in the manifest (recorded in the cluster)
    path: Path | None = None  # resolved against the manifest's directory

    @classmethod
    def from_spec(cls, spec: dict[str, Any], base_dir: Path | None = None) -> ModelSource:
        source = spec.get("source") or {}
        declared = source.get("path")
        path = None
        if declared:
            path = Path(declared).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
        return cls(task_type=spec.get("task_type", ""), hub=source.get("hub"), revision=source.get("revision"),
                   token_env=source.get("token_env"), declared_path=declared, path=path)

    def describe(self) -> str:
        if self.hub:
            return f"{self.hub}@{self.revision}" if self.revision else self.hub
        return str(self.declared_path)

    def identity(self) -> dict[str, Any]:
        """What decides whether the cluster's model is this one: recorded in its metadata, compared by the plan.

        For a local directory the revision is a fingerprint of its contents (computed here: reads the files, no torch).
        """
        if self.hub:
            return {"source": {"hub": self.hub}, "revision": self.revision, "task_type": self.task_type}
        if self.path is None or not self.path.is_dir():
            raise FileNotFoundError(f"model directory {self.path} does not exist")
        return {"source": {"path": self.declared_path}, "revision": f"sha256:{directory_fingerprint(self.path)}",
                "task_type": self.task_type}

    def cache_key(self, identity: dict[str, Any] | None = None) -> str:
        """Key of the traced artifact: what the model IS (see `comparable`), eland and torch versions. The same
        files at two paths share one traced artifact."""
        payload = json.dumps({"model": comparable(identity or self.identity()), **library_versions()},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def comparable(identity: dict[str, Any]) -> list[Any]:
    """What decides whether two identities are the same model: a hub model by its id and revision, a local model
    by the hash of its files ONLY (its path is where it happens to be: a copy elsewhere is the same model)."""
    source = identity.get("source") or {}
    if source.get("hub"):
        return ["hub", source["hub"], identity.get("revision"), identity.get("task_type")]
    return ["local", identity.get("revision"), identity.get("task_type")]


@dataclass(frozen=True)
class Artifact:
    """A traced model on disk, ready to upload."""

    key: str
    directory: Path
    sha256: str
    size: int
    config: dict[str, Any]  # eland's NlpTrainedModelConfig.to_dict()
    vocabulary: dict[str, Any]  # {"vocabulary": [...], "merges"?: [...], "scores"?: [...]}

    @property
    def model_file(self) -> Path:
        return self.directory / MODEL_FILE


class ArtifactCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root) / "models"

    def path_for(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str, *, verify: bool = True) -> Artifact | None:
        """The cached artifact, or None when absent or damaged (a damaged entry is removed, so it is rebuilt)."""
        directory = self.path_for(key)
        try:
            info = json.loads((directory / ARTIFACT_FILE).read_text())
            config = json.loads((directory / CONFIG_FILE).read_text())
            vocabulary = json.loads((directory / VOCAB_FILE).read_text())
            size = (directory / MODEL_FILE).stat().st_size
        except (OSError, ValueError):
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
            return None
        if size != info.get("size") or (verify and sha256_file(directory / MODEL_FILE) != info.get("sha256")):
            shutil.rmtree(directory, ignore_errors=True)
            return None
        return Artifact(key=key, directory=directory, sha256=info["sha256"], size=size, config=config,
                        vocabulary=vocabulary)

    def store(self, key: str, build: Callable[[Path], tuple[dict[str, Any], dict[str, Any]]],
              inputs: dict[str, Any]) -> Artifact:
        """Build an entry with `build(tmpdir) -> (config, vocabulary)` (which writes MODEL_FILE), then publish it."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:8]}-", dir=self.root))
        try:
            config, vocabulary = build(tmp)
            model_file = tmp / MODEL_FILE
            info = {"key": key, "sha256": sha256_file(model_file), "size": model_file.stat().st_size,
                    "inputs": inputs, **library_versions()}
            (tmp / CONFIG_FILE).write_text(json.dumps(config))
            (tmp / VOCAB_FILE).write_text(json.dumps(vocabulary))
            (tmp / ARTIFACT_FILE).write_text(json.dumps(info, indent=1))
            final = self.path_for(key)
            if final.exists():  # a concurrent run published the same key first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        artifact = self.load(key, verify=False)
        assert artifact is not None
        return artifact
