"""The stack lock as a LEASE: one document `<stack>:lock` in the ledger index, renewed while its run is alive.

- acquire: create with op_type=create (compare-and-set: a second create answers 409). A lock whose `expires_at`
  has passed belonged to a run that died (killed pipeline, lost machine): it is taken over with a write
  conditional on the expired document's if_seq_no/if_primary_term, so of two runs racing for it exactly one wins.
- renew: a daemon thread rewrites `expires_at` every lease/3, conditional on the seq_no of our last write, so
  only the holder can renew. If the lock was broken (`invoke unlock --force`) or taken over, or could not be
  renewed before the lease ran out, the run is marked LOST: `check()` (called by the applier before every wave
  and every change) raises LockLost. Residual window: the changes already running when the loss happens finish
  (e.g. the remaining parts of a model upload, a reindex) and record their ownership, so nothing they created is
  left unowned; the loss is noticed at most lease/3 after it happened (the next renewal).
- release: delete conditional on our last seq_no/primary_term, so a run never deletes somebody else's lock.

Every write carries a random `token`: when an answer is lost and the client's retry meets its own earlier write
(409), the document with our token is recognised as ours. A lock whose release was lost just expires.

Clocks: `expires_at` is compared on the reader's clock. When a response carries an HTTP Date header and it differs
from the local clock by more than DATE_RESOLUTION, times are corrected to the cluster's clock (no extra request);
otherwise local time is used. ES: nodes sent no Date header until elastic/elasticsearch#157422 (fixing #157382,
2026); proxies in front of a cluster and the sandbox's server send one. Either way a lock counts as expired only
a margin (lease/4, at most MAX_MARGIN s) after its expires_at, which absorbs the skew left between two agents'
clocks. A larger skew costs liveness only: a live run whose lock was taken over stops (LockLost).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import getpass
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch, NotFoundError

from provisioning.errors import ClusterError, ConfigError, LockHeld, LockLost

DEFAULT_LEASE = 60.0  # seconds; ES_STACK_LOCK_LEASE or Options.lock_lease override it
MAX_MARGIN = 5.0
DATE_RESOLUTION = 2.0  # an HTTP Date has 1 s resolution plus the request's latency: smaller offsets are noise


def lease_seconds(value: float | None = None) -> float:
    """The lease: Options.lock_lease, else $ES_STACK_LOCK_LEASE, else DEFAULT_LEASE (seconds)."""
    raw: Any = value if value is not None else (os.environ.get("ES_STACK_LOCK_LEASE") or DEFAULT_LEASE)
    try:
        lease = float(raw)
    except ValueError:
        lease = -1.0
    if not lease > 0:
        raise ConfigError(f"the stack lock lease (ES_STACK_LOCK_LEASE / lock_lease) must be a positive number of "
                          f"seconds, got {raw!r}")
    return lease


def how_to_break(stack: str) -> str:
    return f"if no other run is active, break the stale lock with `invoke unlock --force --stack {stack}`"


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def _parse(text: Any) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def describe_holder(doc: dict[str, Any]) -> str:
    text = f"{doc.get('holder', 'unknown')} (pid {doc.get('pid', '?')}, `{doc.get('command', '?')}`)"
    if doc.get("host") == socket.gethostname() and isinstance(doc.get("pid"), int) and not _pid_alive(doc["pid"]):
        text += " - that process is no longer running on this host, so the lock looks stale"
    return text


def _dead_run(doc: dict[str, Any]) -> str:
    """An expired lock, for the warnings of the run that takes it over or removes it."""
    return (f"{describe_holder(doc)}, acquired at {doc.get('acquired_at', '?')}, expired at "
            f"{doc.get('expires_at', '?')} (that run died without releasing it)")


def _stderr_warning(text: str) -> None:
    """Where warnings go when the caller passes no `warn` (the engine passes its reporter's)."""
    print(f"warning: {text}", file=sys.stderr)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER", "unknown")


class StackLock:
    """The lease of one stack. acquire/release from the run's thread; renewals from a daemon thread."""

    def __init__(self, client: Elasticsearch, stack: str, index: str, cluster_error: Callable[..., ClusterError]):
        self.client, self.stack, self.index = client, stack, index
        self._cluster_error = cluster_error
        self.doc_id = f"{stack}:lock"
        self._mutex = threading.Lock()  # guards _held and _lost
        self._renewing = threading.Lock()  # held during a renewal request: release waits for it
        self._held: dict[str, Any] | None = None  # doc, seq_no, primary_term, lease, valid_until (monotonic)
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skew = 0.0  # cluster clock - local clock, when a Date header showed a real difference
        self.took_over: dict[str, Any] | None = None  # the expired lock our last acquire replaced

    # ---- time ---------------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self._skew

    def _observe(self, meta: Any) -> None:
        date = getattr(meta, "headers", {}).get("date") if meta is not None else None
        if not date:
            return
        try:
            cluster = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        offset = cluster - time.time()
        self._skew = offset if abs(offset) > DATE_RESOLUTION else 0.0

    def expires(self, doc: dict[str, Any]) -> float | None:
        """When a lock document counts as expired (cluster/local time), None for a lock without a lease."""
        at = _parse(doc.get("expires_at")) if doc.get("expires_at") else None
        if at is None:
            return None  # written by a version without leases: only `invoke unlock --force` frees it
        lease = float(doc.get("lease_seconds") or DEFAULT_LEASE)
        return at + min(MAX_MARGIN, lease / 4)

    def expired(self, doc: dict[str, Any]) -> bool:
        at = self.expires(doc)
        return at is not None and self.now() >= at

    # ---- state --------------------------------------------------------------------------------------------
    @property
    def token(self) -> str | None:
        with self._mutex:
            return self._held["doc"]["token"] if self._held else None

    def check(self) -> None:
        """Raise LockLost when this run's lock was broken, taken over or could not be renewed in time."""
        with self._mutex:
            held, lost = self._held, self._lost
        if lost is None and held is not None and time.monotonic() > held["valid_until"]:
            lost = self._mark_lost("it could not be renewed before its lease ran out (cluster unreachable?)")
        if lost is not None:
            raise LockLost(f"this run lost the stack lock of {self.stack!r}: {lost}; it stopped before its next "
                           f"write. Run the command again: it takes the lock and applies what is left")

    def _mark_lost(self, reason: str) -> str:
        with self._mutex:
            if self._lost is None:
                self._lost = reason
            return self._lost

    # ---- acquire ------------------------------------------------------------------------------------------
    def acquire(self, command: str, *, lease: float | None = None,
                warn: Callable[[str], None] | None = None) -> None:
        """Take the lock, taking over an expired one (with a warning), or raise LockHeld naming the holder."""
        lease = lease_seconds(lease)
        self.took_over = None
        for _ in range(3):  # a lock released between our 409 and our read: try again
            doc = self._new_doc(command, lease)
            try:
                resp = self.client.create(index=self.index, id=self.doc_id, document=doc, refresh=True)
            except ApiError as exc:
                if exc.meta.status != 409:
                    raise self._cluster_error(exc, "taking the stack lock") from exc
                resp = self._take_over(doc, warn)
                if resp is None:
                    continue
            self._observe(resp.meta)
            self._hold(doc, resp, lease, started=time.monotonic())
            return
        raise LockHeld("another run (the lock changed hands repeatedly; retry)", "a moment ago",
                       how_to_break(self.stack))

    def _new_doc(self, command: str, lease: float) -> dict[str, Any]:
        now = self.now()
        return {"type": "lock", "stack": self.stack, "holder": f"{_user()}@{socket.gethostname()}",
                "host": socket.gethostname(), "pid": os.getpid(), "command": command, "acquired_at": _iso(now),
                "expires_at": _iso(now + lease), "lease_seconds": lease,
                # tells our own earlier write (a lost answer) from any other run's, even one in this very process
                "token": os.urandom(8).hex()}

    def _current(self) -> Any | None:
        try:
            current = self.client.get(index=self.index, id=self.doc_id)
        except NotFoundError:
            return None
        except ApiError as exc:
            raise self._cluster_error(exc, "reading the stack lock") from exc
        self._observe(current.meta)
        return current

    def _take_over(self, doc: dict[str, Any], warn: Callable[[str], None] | None) -> Any | None:
        """After a 409 to our create: our own retried create, an expired lock to take over, or LockHeld."""
        current = self._current()
        if current is None:
            return None  # released meanwhile
        old = current["_source"]
        if old == doc:
            return current  # the client retried a create whose answer was lost after ES stored it
        if not self.expired(old):
            raise self.held_error(old)
        try:
            resp = self.client.index(index=self.index, id=self.doc_id, document=doc, refresh=True,
                                     if_seq_no=current["_seq_no"], if_primary_term=current["_primary_term"])
        except ApiError as exc:
            if exc.meta.status != 409:
                raise self._cluster_error(exc, "taking over the expired stack lock") from exc
            resp = self._current()
            if resp is None:
                return None
            if resp["_source"] != doc:  # another run took it over first
                raise self.held_error(resp["_source"]) from None
        self.took_over = old
        (warn or _stderr_warning)(f"took over the expired stack lock of {_dead_run(old)}")
        return resp

    def clear_expired(self, warn: Callable[[str], None] | None = None) -> dict[str, Any] | None:
        """Delete the lock if it has expired (a dead run's leftover), conditionally on the expired document: a run
        that takes it over meanwhile keeps it. Used by an apply with nothing to change, which takes no lock."""
        current = self._current()
        if current is None or not self.expired(current["_source"]):
            return None
        try:
            self.client.delete(index=self.index, id=self.doc_id, if_seq_no=current["_seq_no"],
                               if_primary_term=current["_primary_term"], refresh=True)
        except ApiError as exc:
            if exc.meta.status in (404, 409):  # released or taken over meanwhile: not ours to remove any more
                return None
            raise self._cluster_error(exc, "removing the expired stack lock") from exc
        old = current["_source"]
        (warn or _stderr_warning)(f"removed the expired stack lock of {_dead_run(old)}")
        return old

    def held_error(self, doc: dict[str, Any]) -> LockHeld:
        expires = doc.get("expires_at")
        return LockHeld(describe_holder(doc), doc.get("acquired_at", "?"), how_to_break(self.stack),
                        expires_at=expires)

    def _hold(self, doc: dict[str, Any], resp: Any, lease: float, started: float) -> None:
        self.stop_renewing()
        with self._mutex:
            self._lost = None
            self._held = {"doc": doc, "seq_no": resp["_seq_no"], "primary_term": resp["_primary_term"],
                          "lease": lease, "valid_until": started + lease}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, args=(self._stop, lease), daemon=True,
                                        name=f"lock-renewal-{self.stack}")
        self._thread.start()

    # ---- renew --------------------------------------------------------------------------------------------
    def _renew_loop(self, stop: threading.Event, lease: float) -> None:
        client = self.client.options(request_timeout=max(1.0, lease / 3))
        while not stop.wait(lease / 3):
            with self._renewing:
                if stop.is_set() or not self._renew(client):
                    return

    def _renew(self, client: Any) -> bool:
        """One renewal; False once the lock is lost (the loop ends)."""
        with self._mutex:
            held = dict(self._held) if self._held else None
        if held is None or self._lost is not None:
            return False
        started, now = time.monotonic(), self.now()
        doc = {**held["doc"], "expires_at": _iso(now + held["lease"]), "renewed_at": _iso(now)}
        try:
            resp = client.index(index=self.index, id=self.doc_id, document=doc, refresh=True,
                                if_seq_no=held["seq_no"], if_primary_term=held["primary_term"])
        except ApiError as exc:
            resp = None
            if exc.meta.status == 409:
                current = self._current_quietly()
                if current is not None and current["_source"] == doc:
                    resp = current  # our own renewal, retried after its answer was lost
                else:
                    who = describe_holder(current["_source"]) if current is not None else None
                    self._mark_lost(f"it was taken over by {who}" if who else
                                    "it was broken (`invoke unlock --force`?) or taken over")
                    return False
        except TransportError as exc:
            if _client_closed(exc):
                return False  # the run that holds the lock closed its client: it is over, and so is renewing
            resp = None
        if resp is None:  # no answer: try again next time; check() notices when the lease has run out
            return True
        self._observe(resp.meta)
        with self._mutex:
            if self._held is not None and self._held["doc"]["token"] == doc["token"]:
                self._held.update(doc=doc, seq_no=resp["_seq_no"], primary_term=resp["_primary_term"],
                                  valid_until=started + held["lease"])
        return True

    def _current_quietly(self) -> Any | None:
        try:
            return self._current()
        except (ClusterError, TransportError):
            return None

    def stop_renewing(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            with self._renewing:  # an in-flight renewal finishes first: release must use its seq_no
                pass

    # ---- release / break ----------------------------------------------------------------------------------
    def release(self) -> None:
        """Release our lock (compare-and-set on seq_no/primary_term: never somebody else's)."""
        self.stop_renewing()
        with self._mutex:
            held, self._held, self._lost = self._held, None, None
        if not held:
            return
        try:
            self.client.delete(index=self.index, id=self.doc_id, if_seq_no=held["seq_no"],
                               if_primary_term=held["primary_term"], refresh=True)
        except ApiError as exc:
            # 404/409: somebody broke or took over our lock meanwhile; nothing of ours to release.
            if exc.meta.status not in (404, 409):
                _stderr_warning(f"could not release the stack lock ({exc.message}); it expires at "
                                f"{held['doc'].get('expires_at')}")
        except TransportError as exc:
            _stderr_warning(f"could not release the stack lock ({exc.message}); it expires at "
                            f"{held['doc'].get('expires_at')} and the next run takes it over then")
            raise

    def break_lock(self) -> dict[str, Any] | None:
        """Delete the stack lock whoever holds it (`invoke unlock --force`). Returns the broken lock, if any."""
        current = self._current()
        if current is None:
            return None
        try:
            self.client.delete(index=self.index, id=self.doc_id, refresh=True)
        except NotFoundError:
            return None
        except ApiError as exc:
            raise self._cluster_error(exc, "breaking the stack lock") from exc
        return current["_source"]


def _client_closed(exc: TransportError) -> bool:
    """The client itself was closed (urllib3's ClosedPoolError behind the transport's error), as opposed to a
    cluster that did not answer."""
    from urllib3.exceptions import ClosedPoolError

    causes = [exc.__cause__, *(getattr(e, "__cause__", None) for e in getattr(exc, "errors", ()) or ())]
    return any(isinstance(cause, ClosedPoolError) for cause in causes)
