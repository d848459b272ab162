"""Ownership and the stack lock, recorded in the cluster itself (every pipeline agent sees the same truth).

One hidden index, `es-stack-ledger`, holds:
- one document per managed resource, id `<stack>:<kind>:<name>`: stack, kind, name, spec_hash, applied (the
  last-applied declared spec, secrets replaced by their hash) and kind-specific extras (physical index names ...);
- one lock document per stack, id `<stack>:lock`: a lease (provisioning/stack_lock.py) created with op_type=create
  (compare-and-set: a second create answers 409), renewed while its run lives, taken over once expired, and
  deleted with if_seq_no/if_primary_term so a run never releases a lock it does not hold.

The whole stack is read in ONE search request (ledger.load()); writes refresh so the next plan sees them.
Dot-prefixed names are reserved for system indices in 9.x, hence a hidden index rather than `.es-stack`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from provisioning.errors import ClusterError, LockHeld, api_error
from provisioning.stack_lock import StackLock

__all__ = ["LEDGER_INDEX", "Ledger"]

LEDGER_INDEX = "es-stack-ledger"
IDENTITY_ID = "_ledger"  # the document holding the ledger's random id
MAX_ENTRIES = 10_000  # index.max_result_window: one search page holds a whole stack

LEDGER_SETTINGS = {"index.hidden": True, "index.number_of_shards": 1, "index.auto_expand_replicas": "0-1"}
# dynamic: false keeps the arbitrary `applied` specs in _source only, so two stacks can never produce a mapping
# conflict (e.g. number_of_shards as 1 in one spec and "1" in another).
LEDGER_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "stack": {"type": "keyword"},
        "type": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "name": {"type": "keyword"},
        "spec_hash": {"type": "keyword"},
        "updated_at": {"type": "date"},
    },
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _cluster_error(exc: ApiError, what: str) -> ClusterError:
    return api_error(exc, resource=f"ledger {LEDGER_INDEX}", doing=what)


class Ledger:
    """Ownership records of one stack. Thread-safe: kinds record from the applier's worker threads."""

    def __init__(self, client: Elasticsearch, stack: str):
        self.client = client
        self.stack = stack
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock_doc: dict[str, Any] | None = None  # the lock as seen by the last load()
        self.stack_lock = StackLock(client, stack, LEDGER_INDEX, _cluster_error)
        self._index_exists: bool | None = None
        self._mutex = threading.Lock()
        self._protected: dict[tuple[str, str], bool] = {}
        self._others: dict[tuple[str, str], str] = {}
        self.identity: str | None = None  # the ledger's id: tells clusters apart (saved plans)
        self.identity_is_ours = False  # this run wrote the identity (the ledger did not exist before it)

    # ---- reading ---------------------------------------------------------------------------------------
    def load(self, names: list[str] | None = None) -> None:
        """Read, in one request, every record of the stack (resources and lock), the records OTHER stacks keep for
        the given names (so an object another stack owns is refused naming it), and the ledger's identity."""
        should: list[dict[str, Any]] = [{"term": {"stack": self.stack}}, {"ids": {"values": [IDENTITY_ID]}}]
        if names:
            should.append({"terms": {"name": sorted(set(names))}})
        try:
            resp = self.client.search(index=LEDGER_INDEX, query={"bool": {"should": should}},
                                      size=MAX_ENTRIES, seq_no_primary_term=True)
        except NotFoundError:
            self._index_exists = False
            resp = {"hits": {"hits": []}}
        except ApiError as exc:
            raise _cluster_error(exc, "reading the ownership ledger") from exc
        else:
            self._index_exists = True
        entries: dict[tuple[str, str], dict[str, Any]] = {}
        others: dict[tuple[str, str], str] = {}
        lock_doc = identity = None
        for hit in resp["hits"]["hits"]:
            doc = hit["_source"]
            if hit.get("_id") == IDENTITY_ID:
                identity = doc.get("ledger_id")
            elif doc.get("stack") != self.stack:
                if doc.get("type") == "resource":
                    others[(doc["kind"], doc["name"])] = doc["stack"]
            elif doc.get("type") == "lock":
                lock_doc = doc
            else:
                entries[(doc["kind"], doc["name"])] = doc
        with self._mutex:
            self._entries, self._lock_doc, self._others, self.identity = entries, lock_doc, others, identity

    def owned(self, kind: str) -> dict[str, dict[str, Any]]:
        """name -> entry for every object of `kind` this stack owns."""
        with self._mutex:
            return {name: dict(e) for (k, name), e in self._entries.items() if k == kind}

    def other_owner(self, kind: str, name: str) -> str | None:
        """The stack whose ledger records this object, when it is not this one (loaded for the declared names)."""
        with self._mutex:
            return self._others.get((kind, name))

    def entry(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._mutex:
            found = self._entries.get((kind, name))
            return dict(found) if found else None

    def all_entries(self) -> list[dict[str, Any]]:
        with self._mutex:
            return [dict(e) for e in self._entries.values()]

    @property
    def lock_holder(self) -> dict[str, Any] | None:
        """The lock document seen by the last load(), unless it is our own (a lock written before tokens existed
        has none, so it is never taken for ours: a run holding no lock has no token either)."""
        token = self.stack_lock.token
        if self._lock_doc and token is not None and self._lock_doc.get("token") == token:
            return None
        return self._lock_doc

    # ---- writing ---------------------------------------------------------------------------------------
    def declare(self, resources: list[Any]) -> None:
        """Remember which declared resources are protected: records carry the flag, so deleting a resource
        that is no longer declared is still refused while its last-applied manifest protected it."""
        self._protected = {(r.kind, r.name): bool(r.protected) for r in resources}

    def _doc_id(self, kind: str, name: str) -> str:
        return f"{self.stack}:{kind}:{name}"

    def ensure_index(self) -> None:
        """Create the hidden ledger index once (explicitly: auto-creation would map `applied` dynamically), with its
        identity document: a random id that tells this cluster from another one (a saved plan names it). The
        identity is created with op_type=create, so of two first runs exactly one writes it."""
        if self._index_exists and self.identity:
            return
        if not self._index_exists:
            try:
                self.client.indices.create(index=LEDGER_INDEX, settings=LEDGER_SETTINGS, mappings=LEDGER_MAPPINGS)
            except ApiError as exc:
                if exc.meta.status != 400 or "resource_already_exists" not in str(exc.info):
                    raise _cluster_error(exc, "creating the ownership ledger") from exc
            self._index_exists = True
        identity = uuid.uuid4().hex
        try:
            self.client.create(index=LEDGER_INDEX, id=IDENTITY_ID, refresh=True,
                               document={"type": "identity", "ledger_id": identity, "created_at": _now()})
            self.identity, self.identity_is_ours = identity, True
        except ConflictError:
            pass  # written by an earlier or concurrent run: the next load() reads it
        except ApiError as exc:
            raise _cluster_error(exc, "creating the ownership ledger") from exc

    def record(self, kind: str, name: str, *, spec_hash: str, applied: Any, protected: bool | None = None,
               **extra: Any) -> None:
        """Record (or refresh) ownership of one object. `applied` must already have secrets replaced by hashes."""
        if protected is None:
            protected = self._protected.get((kind, name), False)
        doc = {"type": "resource", "stack": self.stack, "kind": kind, "name": name, "spec_hash": spec_hash,
               "applied": applied, "protected": protected, **extra}
        current = self.entry(kind, name)
        if current is not None and {k: v for k, v in current.items() if k != "updated_at"} == doc:
            return  # unchanged: a no-op apply writes nothing
        doc["updated_at"] = _now()
        self.ensure_index()
        self._write(kind, name, doc, "recording ownership")

    def _write(self, kind: str, name: str, doc: dict[str, Any], what: str) -> None:
        try:
            self.client.index(index=LEDGER_INDEX, id=self._doc_id(kind, name), document=doc, refresh=True)
        except ApiError as exc:
            raise _cluster_error(exc, f"{what} of {kind}/{name}") from exc
        with self._mutex:
            self._entries[(kind, name)] = doc

    def forget(self, kind: str, name: str) -> None:
        """Drop the ownership record of a deleted object (missing records are fine)."""
        try:
            self.client.delete(index=LEDGER_INDEX, id=self._doc_id(kind, name), refresh=True)
        except NotFoundError:
            pass
        except ApiError as exc:
            raise _cluster_error(exc, f"forgetting {kind}/{name}") from exc
        with self._mutex:
            self._entries.pop((kind, name), None)

    # ---- the lock (a lease: provisioning/stack_lock.py) ----------------------------------------------------
    def acquire(self, command: str, *, lease: float | None = None,
                warn: Callable[[str], None] | None = None) -> None:
        """Take the stack lock (taking over an expired one, with a warning) or raise LockHeld naming the holder."""
        self.ensure_index()
        self.stack_lock.acquire(command, lease=lease, warn=warn)

    def lock_expired(self, doc: dict[str, Any]) -> bool:
        """True when a lock document's lease has run out (its run died): the next acquire takes it over."""
        return self.stack_lock.expired(doc)

    def clear_expired_lock(self, warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """Remove a dead run's expired lock (an apply with nothing to change takes no lock but cleans up)."""
        return self.stack_lock.clear_expired(warn)

    def lock_held_error(self, doc: dict[str, Any]) -> LockHeld:
        """LockHeld naming a lock document's holder, since when, its lease and how to break it."""
        return self.stack_lock.held_error(doc)

    def check_lock(self) -> None:
        """Raise LockLost when the lock this run holds was broken, taken over or not renewed in time (the applier
        calls it before every wave and every change; ownership records are still written after a change, so what
        was created is never left unowned)."""
        self.stack_lock.check()

    def release(self) -> None:
        self.stack_lock.release()

    @contextlib.contextmanager
    def locked(self, command: str, *, lease: float | None = None,
               warn: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lock for the duration of a block, releasing it on errors and Ctrl-C too."""
        self.acquire(command, lease=lease, warn=warn)
        try:
            yield
        finally:
            self.release()

    def break_lock(self) -> dict[str, Any] | None:
        """Delete the stack lock whoever holds it (`invoke unlock --force`). Returns the broken lock, if any."""
        return self.stack_lock.break_lock()
