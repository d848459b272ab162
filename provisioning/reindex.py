"""The `reindex_and_count` step of an index replacement: block writes on the serving index, copy it into the new
one, and prove the copy complete before the alias swap (the next planned request) makes it the one served.

On failure (or Ctrl-C) the new index is deleted and the old one takes writes again, so the replacement leaves
nothing behind and the alias never moved.
"""

from __future__ import annotations

import contextlib
from typing import Any

from elasticsearch import ApiError

from provisioning.errors import ClusterError


def reindex_and_count(run: Any, *, source: str, dest: str) -> None:
    client = run.client
    blocked = False
    try:
        # Writes stop on the old index while we copy, so no document written meanwhile is lost; readers go on.
        client.indices.put_settings(index=source, settings={"index.blocks.write": True})
        blocked = True
        result = client.options(request_timeout=run.ctx.options.wait_timeout).reindex(
            source={"index": source}, dest={"index": dest}, wait_for_completion=True, refresh=True)
        if result.get("failures"):
            first = result["failures"][0]
            raise ClusterError(f"reindex from {source} into {dest} failed: {first.get('cause', first)}")
        client.indices.refresh(index=dest)
        before, after = client.count(index=source)["count"], client.count(index=dest)["count"]
        if before != after:
            raise ClusterError(f"reindex copied {after} of {before} documents from {source} into {dest}")
        run.ctx.reporter.info(f"{run.change.key}: copied {after} documents from {source} into {dest}")
    except BaseException:
        with contextlib.suppress(ApiError):
            client.options(ignore_status=404).indices.delete(index=dest)
        if blocked:
            with contextlib.suppress(ApiError):
                client.indices.put_settings(index=source, settings={"index.blocks.write": None})
        raise
