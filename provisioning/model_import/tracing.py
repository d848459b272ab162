"""Tracing a Hugging Face model into TorchScript with eland's own Python API (TransformerModel), into the cache.

Every heavy import (torch, transformers, huggingface_hub, eland.ml) happens inside the functions: importing this
module is cheap, so the kind can catch its exception types without paying for tracing.

Everything that can go wrong with a source (hub unreachable or offline, private repository without a token,
unsupported architecture or task type) fails here, before anything is uploaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provisioning.errors import ConfigError, ProvisioningError
from provisioning.model_import.cache import MODEL_FILE, Artifact, ArtifactCache, ModelSource

# Weights we need from a hub repository: safetensors first, the legacy pickle only when a repo has nothing else.
_HUB_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]
_HUB_LEGACY_WEIGHTS = ["pytorch_model.bin"]


class SourceUnavailable(ConfigError):
    """The model's files cannot be obtained (hub offline or unreachable, repository or revision missing, no access)."""


class UnsupportedModel(ProvisioningError):
    """eland cannot trace this model for this task type (architecture, tokenizer, task type, input size)."""


def es_version(client: Any, info: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """The cluster's version as eland's TransformerModel wants it (`es_version`; eland/cli/eland_import_hub_model.py
    check_cluster_version reads it the same way). 8.15+ and 9.x: provisioning/versions.py eland_es_version."""
    info = info if info is not None else client.info().body
    version = info.get("version", {})
    if version.get("build_flavor") == "serverless":  # serverless is always compatible: eland's own version
        from eland._version import __version__

        number = __version__
    else:
        number = version.get("number", "")
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", number)
    if not match:
        raise ConfigError(f"cannot read the Elasticsearch version from GET / (got {number!r})")
    parsed: tuple[int, int, int] = tuple(int(x) for x in match.groups())  # type: ignore[assignment]
    from provisioning.versions import MINIMUM, eland_es_version, show

    if parsed < MINIMUM:
        raise ConfigError(f"es-stack traces models for Elasticsearch {show(MINIMUM)} or later (eland "
                          f"{_eland_version()}); the cluster runs {number}")
    return eland_es_version(parsed)


def _eland_version() -> str:
    from provisioning.model_import.cache import library_versions

    return library_versions()["eland"]


def fetch(source: ModelSource, label: str, token: str | None = None) -> Path:
    """A local directory with the model's files: the declared path, or a hub snapshot (revision-pinned)."""
    if not source.hub:
        assert source.path is not None
        if not (source.path / "config.json").is_file():
            raise SourceUnavailable(f"{label}: {source.path} is not a Hugging Face model directory (no config.json)")
        return source.path

    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    hint = (f"to work offline, download the model once and point spec.source.path at the local directory "
            f"(e.g. `huggingface-cli download {source.hub} --local-dir models/{source.hub.split('/')[-1]}`)")
    try:
        directory = Path(huggingface_hub.snapshot_download(
            repo_id=source.hub, revision=source.revision, token=token, allow_patterns=_HUB_FILES))
        if not any(directory.glob("*.safetensors")):
            directory = Path(huggingface_hub.snapshot_download(
                repo_id=source.hub, revision=source.revision, token=token,
                allow_patterns=_HUB_FILES + _HUB_LEGACY_WEIGHTS))
    except hub_errors.GatedRepoError as exc:
        raise SourceUnavailable(
            f"{label}: model {source.hub} is gated on the Hugging Face hub and needs an access token"
            + (f" (the token in ${source.token_env} was refused)" if token else
               "; set spec.source.token_env to the name of an environment variable holding one")) from exc
    except hub_errors.RevisionNotFoundError as exc:
        raise SourceUnavailable(f"{label}: revision {source.revision!r} of {source.hub} does not exist") from exc
    except hub_errors.RepositoryNotFoundError as exc:
        raise SourceUnavailable(
            f"{label}: model {source.hub} was not found on the Hugging Face hub (or it is private"
            + ("" if token else " and no token was given: set spec.source.token_env") + ")") from exc
    except hub_errors.LocalEntryNotFoundError as exc:  # offline (HF_HUB_OFFLINE=1) or hub unreachable, not cached
        raise SourceUnavailable(f"{label}: cannot download model {source.describe()} from the Hugging Face hub "
                                f"(offline or unreachable) and it is not in the local hub cache; {hint}") from exc
    except (hub_errors.HfHubHTTPError, OSError) as exc:
        raise SourceUnavailable(f"{label}: downloading model {source.describe()} from the Hugging Face hub failed "
                                f"({type(exc).__name__}); {hint}") from exc
    if not any(directory.glob("*.safetensors")) and not (directory / "pytorch_model.bin").is_file():
        raise UnsupportedModel(f"{label}: {source.describe()} has no PyTorch weights (model.safetensors or "
                               f"pytorch_model.bin); eland can only trace PyTorch models")
    return directory


def _quiet_torch() -> None:
    """The CUDA build of torch that eland pins logs "gpuGetDeviceCount failed" from its profiler (kineto) when it
    traces on a machine without a GPU: noise that reads like a failure. Must be set before torch is imported."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")


def check_architecture(directory: Path, task_type: str, label: str) -> None:
    """Refuse a task type the model's architecture cannot serve, using eland's own table, before loading weights."""
    _quiet_torch()
    from eland.ml.pytorch.transformers import ARCHITECTURE_TO_TASK_TYPE, SUPPORTED_TASK_TYPES

    if task_type not in SUPPORTED_TASK_TYPES:
        raise UnsupportedModel(f"{label}: task type {task_type!r} is not supported by eland "
                               f"(supported: {', '.join(sorted(SUPPORTED_TASK_TYPES))})")
    try:
        architectures = json.loads((directory / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{label}: cannot read {directory / 'config.json'}: {exc}") from exc
    for architecture in architectures:
        for suffix, task_types in ARCHITECTURE_TO_TASK_TYPE.items():
            if suffix in architecture and task_type not in task_types:
                raise UnsupportedModel(
                    f"{label}: a {architecture} model cannot serve task type {task_type!r} "
                    f"(it can serve: {', '.join(task_types)}); fix spec.task_type or choose another model")


def trace(source: ModelSource, *, cache: ArtifactCache, key: str, identity: dict[str, Any],
          version: tuple[int, int, int], label: str, token: str | None = None, reporter: Any = None) -> Artifact:
    """Fetch, check and trace the model into the cache (or reuse the cached artifact for this key)."""
    cached = cache.load(key)
    if cached is not None:
        return cached
    progress = reporter.progress(f"tracing {label}", total=3) if reporter is not None else None
    try:
        directory = fetch(source, label, token)
        _step(progress)
        check_architecture(directory, source.task_type, label)

        def build(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
            with _quiet():
                return _build(tmp)

        def _build(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
            model = _load(directory, source.task_type, version, label)
            _step(progress)
            try:
                model_path, config, vocab_path = model.save(str(tmp))
            except RuntimeError as exc:  # torch.jit.trace/freeze refusing the model's forward
                raise UnsupportedModel(f"{label}: TorchScript tracing failed: {str(exc).splitlines()[0]}") from exc
            if Path(model_path) != tmp / MODEL_FILE:
                Path(model_path).replace(tmp / MODEL_FILE)
            _step(progress)
            body = config.to_dict()
            # eland names the temporary or snapshot directory; the cluster should show where the model came from
            body["description"] = f"Model {source.describe()} for task type '{source.task_type}'"
            return body, json.loads(Path(vocab_path).read_text())

        return cache.store(key, build, inputs=identity)
    finally:
        if progress is not None:
            progress.close()


def _load(directory: Path, task_type: str, version: tuple[int, int, int], label: str) -> Any:
    _quiet_torch()
    from eland.ml.pytorch.transformers import TaskTypeError, TransformerModel, UnknownModelInputSizeError

    try:
        return TransformerModel(model_id=str(directory), task_type=task_type, es_version=version)
    except (TaskTypeError, UnknownModelInputSizeError, TypeError, ValueError, KeyError, OSError) as exc:
        # eland raises TypeError for unsupported tokenizers/tasks; transformers ValueError/KeyError for unknown
        # architectures and OSError for missing weight or tokenizer files
        raise UnsupportedModel(f"{label}: eland cannot trace this model for task type {task_type!r}: {exc}") from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep tracing's expected chatter (TracerWarnings about constants, transformers' config notes) out of the
    apply output; errors still raise."""
    import transformers
    from torch.jit import TracerWarning

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TracerWarning)
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def _step(progress: Any) -> None:
    if progress is not None:
        progress.update(1)
