"""The bulk steps of a documents change: index the planned documents of a data file, or delete planned ids.

The data file is read again at apply: a file that changed after the plan (its content hash differs) is refused,
so the documents loaded are the ones the plan listed (in the process that made the plan, the hash it computed is
reused while the file's size and modification time are unchanged; otherwise the file is streamed once more).

Loading streams the file: chunks of BULK_CHUNK documents go to BULK_WORKERS bulk requests at a time, and at most
2 x BULK_WORKERS chunks are held in memory, whatever the size of the file. Each chunk goes through the client's
`streaming_bulk`, which retries the documents a 429 rejected with exponential backoff; the client itself retries a
whole request answered 429/502/503/504 or cut by a dropped connection (index by id: repeating one is harmless).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any

from elasticsearch import helpers

from provisioning.errors import ClusterError, Refused
from provisioning.kinds.documents import scanned
from provisioning.kinds.documents_data import field_value, iter_source

BULK_CHUNK = 500  # documents per bulk request (helpers.parallel_bulk's default chunk_size)
BULK_MAX_BYTES = 10 * 1024 * 1024  # and at most this many bytes (the helpers' max_chunk_bytes default is 100 MiB)
BULK_RETRIES = 5  # retries of documents rejected with 429 (backoff 1, 2, 4, 8, 16 s)


def bulk_workers() -> int:
    """Bulk requests in flight (ES_STACK_BULK_WORKERS; default 4, helpers.parallel_bulk's thread_count)."""
    try:
        return max(1, int(os.environ.get("ES_STACK_BULK_WORKERS", "4")))
    except ValueError:
        return 4


def _chunks(actions: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(actions)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _bulk(run: Any, actions: Iterable[dict[str, Any]], what: str, total: int) -> None:
    errors: list[dict[str, Any]] = []
    done = 0
    workers = bulk_workers()

    def send(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        failed = []
        for ok, item in helpers.streaming_bulk(run.client, chunk, chunk_size=BULK_CHUNK,
                                               max_chunk_bytes=BULK_MAX_BYTES, max_retries=BULK_RETRIES,
                                               initial_backoff=1, raise_on_error=False, raise_on_exception=True):
            if not ok:
                op = next(iter(item.values()))
                if not (op.get("status") == 404 and what == "delete"):
                    failed.append(op)
        return failed

    with run.ctx.reporter.progress(f"{run.change.key}: {what}", total=total) as progress, \
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk") as pool:
        pending: dict[Future[list[dict[str, Any]]], int] = {}

        def collect(finished: set[Future[list[dict[str, Any]]]]) -> None:
            nonlocal done
            for future in finished:
                errors.extend(future.result())  # an exception (after the client's retries) stops the load
                size = pending.pop(future)
                done += size
                progress.update(size)
        try:
            for chunk in _chunks(actions, BULK_CHUNK):
                pending[pool.submit(send, chunk)] = len(chunk)
                if len(pending) >= 2 * workers:  # bounded: the file is read only as fast as the cluster takes it
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    collect(finished)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    if errors:
        err = errors[0].get("error") or {}
        reason = err.get("reason", err) if isinstance(err, dict) else err
        raise ClusterError(f"{len(errors)} of {done} documents failed to {what}; first: id "
                           f"{errors[0].get('_id')}: {reason}", status=errors[0].get("status"),
                           es_type=err.get("type") if isinstance(err, dict) else None)


def bulk_index(run: Any, *, index: str, source: str, format: str, id_field: str, ids: list[str] | None,
               content_hash: str) -> None:
    desired, _, _ = scanned(source, format, id_field)
    if desired.content_hash != content_hash:
        raise Refused(f"{run.change.key}: {source} changed after the plan was made; make a new plan")
    wanted = None if ids is None else set(ids)

    def actions() -> Iterator[dict[str, Any]]:
        for _, doc in iter_source(source, format):
            doc_id = str(field_value(doc, id_field))
            if wanted is None or doc_id in wanted:
                yield {"_op_type": "index", "_index": index, "_id": doc_id, "_source": doc}

    _bulk(run, actions(), "index", desired.count if wanted is None else len(wanted))


def bulk_delete(run: Any, *, index: str, ids: list[str]) -> None:
    if not run.client.indices.exists(index=index):
        return  # nothing left to delete (and a bulk must never be what creates an index)
    _bulk(run, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids), "delete", len(ids))
