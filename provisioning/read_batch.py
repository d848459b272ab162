"""One `_msearch` for the searches several kinds need while a plan reads (issue 14): the index kind's document
counts and the documents kind's presence counts travel together, so a plan's requests stay a small constant.

The planner opens a batch around its reads (`batched_reads`); a kind's read adds its searches with a callback that
fills its live objects, and the batch is sent once all kinds have read. Outside a batch (a kind read on its own,
as the lifecycle does to check one change) `add` sends at once, so no caller can see a live object left unfilled.
"""

from __future__ import annotations

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


def add_search(ctx: Any, header: dict[str, Any], body: dict[str, Any], callback: Callback) -> None:
    """Queue a search in the plan's batch; without one, collect it for `send_now`."""
    batch = getattr(ctx, "read_batch", None)
    if batch is None:
        batch = ctx.__dict__.setdefault("_unbatched_reads", ReadBatch(ctx.client))
    batch.add(header, body, callback)


def send_unbatched(ctx: Any) -> None:
    """Send what a kind read queued outside a plan's batch (one _msearch), at the end of that read."""
    batch = ctx.__dict__.pop("_unbatched_reads", None)
    if batch is not None:
        batch.flush()


@contextmanager
def batched_reads(ctx: Any) -> Iterator[None]:
    """Searches added while the block runs are sent as ONE _msearch when it ends (not when it raises)."""
    batch = ReadBatch(ctx.client)
    previous = getattr(ctx, "read_batch", None)
    ctx.read_batch = batch
    try:
        yield
    finally:
        ctx.read_batch = previous
    batch.flush()
