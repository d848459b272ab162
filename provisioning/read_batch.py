"""One `_msearch` for the searches several kinds need while a plan reads (issue 14): the index kind's document
counts and the documents kind's presence counts travel together, so a plan's requests stay a small constant.

The planner opens a batch around its reads (`batched_reads`); a kind's read adds its searches with a callback that
fills its live objects, and the batch is sent once all kinds have read. Outside a batch (a kind read on its own,
as the lifecycle does to check one change) `add` sends at once, so no caller can see a live object left unfilled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Callback = Callable[[dict[str, Any]], None]


class ReadBatch:
    def __init__(self, client: Any):
        self.client = client
        self.searches: list[dict[str, Any]] = []
        self.callbacks: list[Callback] = []

    def add(self, header: dict[str, Any], body: dict[str, Any], callback: Callback) -> None:
        self.searches += [header, body]
        self.callbacks.append(callback)

    def flush(self) -> None:
        if not self.callbacks:
            return
        searches, callbacks = self.searches, self.callbacks
        self.searches, self.callbacks = [], []
        responses = self.client.msearch(searches=searches)["responses"]
        for callback, response in zip(callbacks, responses, strict=True):
            callback(response)


_local = threading.local()  # per thread: changes applied in parallel each read on their own


def _batches() -> dict[tuple[int, str], ReadBatch]:
    if not hasattr(_local, "batches"):
        _local.batches = {}
    return _local.batches


def add_search(ctx: Any, header: dict[str, Any], body: dict[str, Any], callback: Callback) -> None:
    """Queue a search in the plan's batch of this thread; without one, collect it for `send_unbatched`."""
    batches = _batches()
    batch = batches.get((id(ctx), "plan")) or batches.setdefault((id(ctx), "single"), ReadBatch(ctx.client))
    batch.add(header, body, callback)


def send_unbatched(ctx: Any) -> None:
    """Send what a kind read queued outside a plan's batch (one _msearch), at the end of that read."""
    batch = _batches().pop((id(ctx), "single"), None)
    if batch is not None:
        batch.flush()


@contextmanager
def batched_reads(ctx: Any) -> Iterator[None]:
    """Searches added in this thread while the block runs are sent as ONE _msearch when it ends (not when it
    raises)."""
    key = (id(ctx), "plan")
    batches = _batches()
    previous = batches.get(key)
    batch = batches[key] = ReadBatch(ctx.client)
    try:
        yield
    finally:
        if previous is None:
            batches.pop(key, None)
        else:
            batches[key] = previous
    batch.flush()
