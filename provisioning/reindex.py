"""The `reindex_and_count` step of an index replacement: block writes on the serving index, copy it into the new
one, and prove the copy complete before the alias swap (the next planned request) makes it the one served.

- Writes stop with the add-block API (`PUT <index>/_block/write`), which, unlike setting `index.blocks.write`,
  waits until the writes in flight are done (ES AddIndexBlockRequest / MetadataIndexStateService#addIndexBlock):
  a write that was acknowledged is in the old index before the copy starts; a later one is refused until the
  alias points at the new index.
- `_reindex` runs as a task (`wait_for_completion=false`), polled through the tasks API with progress, so a slow
  copy is never sent twice by a client retry; `slices=auto` lets ES parallelise it over the source's shards.
- The source is refreshed after the block and before the copy (a reindex reads through a scroll search, which sees
  only refreshed documents), and both are refreshed before they are counted.
- On failure or Ctrl-C the task is cancelled, the new index deleted and the old one takes writes again: the alias
  never moved and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from elasticsearch import ApiError

from provisioning.errors import ClusterError, es_reason

POLL = 0.5  # seconds between task polls
REPORT_EVERY = 10.0  # seconds between progress lines


def reindex_and_count(run: Any, *, source: str, dest: str) -> None:
    client = run.client
    task_id = None
    blocked = False
    try:
        client.indices.add_block(index=source, block="write")
        blocked = True
        # the copy is a scroll search: it sees only refreshed documents, so every write acknowledged before the
        # block must be refreshed first or it would be in neither the copy nor the count
        client.indices.refresh(index=source)
        started = client.reindex(source={"index": source}, dest={"index": dest}, wait_for_completion=False,
                                 slices="auto")
        task_id = started["task"]
        result = _wait(run, task_id, source, dest)
        task_id = None
        failures = result.get("failures") or []
        if failures:
            first = failures[0]
            raise ClusterError(f"reindex from {source} into {dest} failed: {first.get('cause', first)}")
        client.indices.refresh(index=f"{source},{dest}")
        before, after = client.count(index=source)["count"], client.count(index=dest)["count"]
        if before != after:
            raise ClusterError(f"reindex copied {after} of {before} documents from {source} into {dest}")
        run.ctx.reporter.info(f"{run.change.key}: copied {after} documents from {source} into {dest}")
    except BaseException as failure:
        running = _cancel(client, task_id)
        if running is None:  # a task still copying would create `dest` again: it stays, as a leftover of ours
            with contextlib.suppress(ApiError):
                client.options(ignore_status=404).indices.delete(index=dest)
        if blocked:
            with contextlib.suppress(ApiError):
                client.indices.put_settings(index=source, settings={"index.blocks.write": None})
        if running is not None:
            raise ClusterError(f"the reindex task {task_id} from {source} into {dest} could not be cancelled "
                               f"({running}); it may still be copying. {source} serves and takes writes again; "
                               f"the next apply deletes {dest}") from failure
        raise


def _cancel(client: Any, task_id: str | None) -> str | None:
    """Cancel a reindex task still running; None when done (or there was none), else why it failed."""
    if task_id is None:
        return None
    try:
        client.options(ignore_status=404).tasks.cancel(task_id=task_id)
    except ApiError as exc:
        return f"Elasticsearch answered {exc.meta.status}: {es_reason(exc)}"
    return None


def _wait(run: Any, task_id: str, source: str, dest: str) -> dict[str, Any]:
    """Poll the reindex task until it completes; its response. Progress on the reporter every few seconds."""
    deadline = time.monotonic() + float(run.ctx.options.wait_timeout)
    last_report = time.monotonic()
    while True:
        task = run.client.tasks.get(task_id=task_id).body
        status = (task.get("task") or {}).get("status") or {}
        if task.get("completed"):
            if task.get("error"):
                error = task["error"]
                raise ClusterError(f"reindex from {source} into {dest} failed: "
                                   f"{error.get('reason', error) if isinstance(error, dict) else error}")
            return task.get("response") or {}
        now = time.monotonic()
        if now - last_report >= getattr(run.ctx.reporter, "interval", REPORT_EVERY):
            done = status.get("created", 0) + status.get("updated", 0)
            run.ctx.reporter.info(f"{run.change.key}: reindexing {source} into {dest}: {done} of "
                                  f"{status.get('total', '?')} documents")
            last_report = now
        if now >= deadline:
            raise ClusterError(f"reindex from {source} into {dest} did not finish within the wait timeout "
                               f"(task {task_id}); it was cancelled and nothing changed")
        time.sleep(POLL)
