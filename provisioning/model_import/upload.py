"""Uploading a traced model: config, then definition parts CONCURRENTLY (bounded worker pool) with the vocabulary.

The wire format is eland's (eland/ml/pytorch/_pytorch_model.py `put_model`): 1 MiB chunks of the TorchScript file,
base64-encoded, each with `total_definition_length` and `total_parts`. ES stores each part as its own document, so
parts may arrive in any order; `fully_defined` (GET ...?include=definition_status) turns true once all are stored
(ES TransportStartTrainedModelDeploymentAction.checkFullModelDefinitionIsPresent).

Resuming: ES refuses to overwrite a stored part (400 resource_already_exists_exception "Trained machine learning
model chunked doc [id][n] already exists": TrainedModelProvider.storeTrainedModelDefinitionDoc, allowOverwriting
false), so
a part answered that way is already there: re-sending every part is always safe. A small journal in the cache
directory remembers which parts were acknowledged, so a resumed upload sends only the missing ones.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from elastic_transport import TransportError
from elasticsearch import ApiError

from provisioning.errors import ClusterError, ProvisioningError, es_reason
from provisioning.model_import.cache import Artifact

CHUNK_SIZE = 1024 * 1024  # eland's DEFAULT_CHUNK_SIZE: ES's REST layer accepts it comfortably
# Parts in flight at once, unless --upload-workers / ES_STACK_UPLOAD_WORKERS say otherwise. Chosen by measurement
# (bench/upload_ratio.py, README "Benchmarks"): at 20 ms per request a 90 MB model is latency-bound below about 12
# parts in flight, and 12, 16 and 24 take the same time; 16 keeps a margin for slower links. More only queues parts
# behind the cluster's own per-part work (ES stores each part as a document). ES_STACK_UPLOAD_WORKERS=1 uploads in
# order, as eland does.
DEFAULT_WORKERS = 16
WORKERS_VARIABLE = "ES_STACK_UPLOAD_WORKERS"
PART_TIMEOUT = 120  # seconds per part request (a 1 MiB part on a slow link)
_JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}


class UploadInterrupted(ProvisioningError):
    """An upload stopped half-way. The model stays half-defined; the next apply resumes or restarts it."""


@dataclass
class UploadReport:
    total_parts: int
    sent: int = 0  # parts stored by this run
    already_stored: int = 0  # parts ES already had (a resumed upload)
    skipped: int = 0  # parts the journal knew were stored
    vocabulary: bool = False
    errors: list[str] = field(default_factory=list)


def upload_workers(requested: int | None = None) -> int:
    """The number of parts sent at once: `requested` (--upload-workers), else $ES_STACK_UPLOAD_WORKERS, else
    DEFAULT_WORKERS."""
    if requested:
        return max(1, int(requested))
    value = os.environ.get(WORKERS_VARIABLE, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ProvisioningError(f"{WORKERS_VARIABLE} must be a whole number of parallel part uploads, not "
                                    f"{value!r}") from None
    return DEFAULT_WORKERS


def total_parts(size: int, chunk_size: int = CHUNK_SIZE) -> int:
    return max(1, math.ceil(size / chunk_size))


def already_exists(exc: Exception) -> bool:
    """ES answers a repeated part or vocabulary with 400 resource_already_exists_exception ("Trained machine
    learning model chunked doc [id][n] already exists": TrainedModelProvider wraps the index request's version
    conflict); a raw 409 version conflict means the same."""
    if not isinstance(exc, ApiError):
        return False
    return (exc.meta.status == 400 and exc.error == "resource_already_exists_exception") or (
        exc.meta.status == 409 and exc.error == "version_conflict_engine_exception")


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.meta.status} {exc.error}: {es_reason(exc)}"
    return f"{type(exc).__name__}: {exc}"


class Journal:
    """Parts of one artifact acknowledged by one cluster, kept on disk between runs (best effort)."""

    def __init__(self, path: Path | None, sha256: str, chunk_size: int):
        self.path, self.sha256, self.chunk_size = path, sha256, chunk_size
        self.done: set[int] = set()
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("sha256") == sha256 and data.get("chunk_size") == chunk_size:
                self.done = {int(p) for p in data.get("done", [])}

    @classmethod
    def for_model(cls, directory: Path | None, cluster: str, model_id: str, sha256: str,
                  chunk_size: int = CHUNK_SIZE) -> Journal:
        if directory is None:
            return cls(None, sha256, chunk_size)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cluster}-{model_id}")
        return cls(Path(directory) / "uploads" / f"{safe}.json", sha256, chunk_size)

    def mark(self, part: int) -> None:
        with self._lock:
            self.done.add(part)

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            payload = {"sha256": self.sha256, "chunk_size": self.chunk_size, "done": sorted(self.done)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(payload))
            os.replace(tmp, self.path)
        except OSError:
            pass  # the journal only saves bandwidth; ES itself tells which parts exist

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def definition_status(client: Any, model_id: str) -> dict[str, Any] | None:
    """The model's config with `fully_defined`, or None when the model does not exist (one model per request: ES
    refuses definition_status for several models at once, ES TransportGetTrainedModelsAction)."""
    response = client.options(ignore_status=404).ml.get_trained_models(model_id=model_id,
                                                                       include="definition_status")
    if response.meta.status == 404:
        return None
    configs = response.body.get("trained_model_configs", [])
    return configs[0] if configs else None


def put_config(client: Any, model_id: str, body: dict[str, Any]) -> None:
    try:
        client.ml.put_trained_model(model_id=model_id, body=body)
    except ApiError as exc:
        # "already exists" right after the client retried a PUT whose answer was lost: the stored config is this
        # very one (same metadata: owner, stack, artifact sha256), so the upload goes on
        if not already_exists(exc):
            raise
        stored = definition_status(client, model_id)
        if stored is None or (stored.get("metadata") or {}) != (body.get("metadata") or {}):
            raise


def put_vocabulary(client: Any, model_id: str, vocabulary: dict[str, Any]) -> bool:
    """Store the vocabulary; True when sent now, False when ES already had it (a resumed upload)."""
    try:
        client.ml.put_trained_model_vocabulary(model_id=model_id, body=vocabulary)
        return True
    except ApiError as exc:
        if already_exists(exc):
            return False
        raise


def upload_parts(client: Any, model_id: str, artifact: Artifact, *, workers: int = DEFAULT_WORKERS,
                 chunk_size: int = CHUNK_SIZE, journal: Journal | None = None, progress: Any = None) -> UploadReport:
    """Send every definition part not known to be stored, `workers` at a time. Stops at the first failure (after
    the requests in flight finish) and raises UploadInterrupted; the journal keeps what was acknowledged."""
    size = artifact.size
    parts = total_parts(size, chunk_size)
    report = UploadReport(total_parts=parts)
    journal = journal or Journal(None, artifact.sha256, chunk_size)
    todo = [p for p in range(parts) if p not in journal.done]
    report.skipped = parts - len(todo)
    if progress is not None and report.skipped:
        progress.update(report.skipped)
    stop = threading.Event()
    lock = threading.Lock()
    part_client = client.options(request_timeout=PART_TIMEOUT)
    path = f"/_ml/trained_models/{quote(model_id, safe='')}/definition"
    fd = os.open(artifact.model_file, os.O_RDONLY)
    tail = f'","total_definition_length":{size},"total_parts":{parts}}}'.encode()

    def send(part: int) -> None:
        if stop.is_set():
            return
        data = os.pread(fd, chunk_size, part * chunk_size)
        # The body is built as bytes: base64 needs no JSON escaping, and skipping the client's serializer halves
        # the client CPU per 1 MiB part (what bounds concurrent uploads in one Python process). Same request as
        # client.ml.put_trained_model_definition_part (PutTrainedModelDefinitionPartAction.Request).
        body = b"".join((b'{"definition":"', base64.b64encode(data), tail))  # one copy of the 1.4 MB
        try:
            part_client.perform_request("PUT", f"{path}/{part}", body=body, headers=_JSON_HEADERS,
                                        endpoint_id="ml.put_trained_model_definition_part",
                                        path_parts={"model_id": model_id, "part": part})
            outcome = "sent"
        except ApiError as exc:
            if not already_exists(exc):
                _fail(part, exc)
                return
            outcome = "already_stored"
        except TransportError as exc:  # connection dropped, timeout: retries are the client's; this one is final
            _fail(part, exc)
            return
        journal.mark(part)
        with lock:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress.update(1)

    def _fail(part: int, exc: Exception) -> None:
        stop.set()
        with lock:
            report.errors.append(f"part {part}: {describe_error(exc)}")

    # The LAST part goes alone, after every other part was acknowledged: ES refreshes the definition index only
    # when it stores the last part (TransportPutTrainedModelDefinitionPartAction: refresh when part ==
    # total_parts - 1) and answers definition_status from a search, so a part stored after the last one would stay
    # invisible and the model would look incomplete. eland uploads in order for the same reason.
    last = parts - 1
    first_batch = [p for p in todo if p != last]
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"upload-{model_id}") as pool:
            try:
                list(pool.map(send, first_batch))
            except BaseException:  # Ctrl-C: let queued parts return at once instead of uploading on
                stop.set()
                raise
        if last in todo and not stop.is_set():
            send(last)
    finally:
        os.close(fd)
        journal.save()
    if report.errors:
        done = report.skipped + report.sent + report.already_stored
        raise UploadInterrupted(
            f"trained_model/{model_id}: upload interrupted after {done}/{parts} definition parts "
            f"({report.errors[0]}); the model is half-defined and the next apply resumes the upload")
    return report


STATUS_POLLS = (0.2, 0.5, 1.0, 2.0)  # seconds between definition_status reads before calling an upload incomplete


def _settled_status(client: Any, model_id: str) -> dict[str, Any] | None:
    """definition_status, read again briefly while it says incomplete: a refresh of the definition index may still
    be on its way (a part acknowledged just before the last one)."""
    status = definition_status(client, model_id)
    for pause in STATUS_POLLS:
        if status is None or status.get("fully_defined") is not False:
            return status
        time.sleep(pause)
        status = definition_status(client, model_id)
    return status


def upload(client: Any, model_id: str, artifact: Artifact, config_body: dict[str, Any] | None, *,
           workers: int = DEFAULT_WORKERS, journal: Journal | None = None, reporter: Any = None,
           chunk_size: int = CHUNK_SIZE) -> UploadReport:
    """Config (unless resuming: config_body None), then the definition parts and the vocabulary at the same time
    (ES stores the vocabulary as its own document of an existing model, whatever the state of its definition: one
    round trip less), then the check that the definition is complete."""
    if config_body is not None:
        put_config(client, model_id, config_body)
    parts = total_parts(artifact.size, chunk_size)
    progress = reporter.progress(f"uploading {model_id}", total=parts) if reporter is not None else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vocabulary-{model_id}") as side:
        vocabulary = side.submit(put_vocabulary, client, model_id, artifact.vocabulary)
        try:
            report = upload_parts(client, model_id, artifact, workers=workers, chunk_size=chunk_size,
                                  journal=journal, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        report.vocabulary = vocabulary.result()  # its failure (after the client's retries) fails the upload
    status = _settled_status(client, model_id)
    if status is None or status.get("fully_defined") is False:
        # ES counts the stored parts and their lengths; a mismatch means parts from another artifact were stored,
        # or the journal claimed parts the cluster does not have: forget it, so the next run re-sends every part
        if journal is not None:
            journal.discard()
        raise ClusterError("the model definition is not complete after uploading every part "
                           "(fully_defined is false); the next apply deletes and re-uploads it",
                           resource=f"trained_model/{model_id}")
    if journal is not None:
        journal.discard()
    return report
