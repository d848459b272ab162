"""Shared pieces of the reliability tests: the example stack with the tiny model, a sandbox that can "kill" a run
at a chosen request, fault specifications, and a snapshot of everything a stack leaves in the cluster.

Nothing here mocks the client: every run talks HTTP to a sandbox through the engine's own `connect()`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request

from sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
MOVIES = MANIFESTS / "data" / "movies.json"
STACK = "reliability"
INDEX = "movies"
MODEL_ID = "cross-encoder__ms-marco-minilm-l-6-v2"
ENDPOINT = "my-msmarco-minilm-model"
LEDGER = "es-stack-ledger"
IDENTITY_ID = "_ledger"
# Variables the example stack reads (templates/settings.j2): cleared so a developer's shell cannot leak in.
STACK_VARIABLES = ("RERANK_MODEL_PATH", "RERANK_MODEL_REVISION", "HF_TOKEN", "EXPECT_RERANK_TOP",
                   "RERANK_NUM_ALLOCATIONS", "RERANK_NUM_THREADS", "MOVIES_SHARDS", "MOVIES_REPLICAS", "NAME_PREFIX")
# A vocabulary this large makes the tiny model's TorchScript file ~2.5 MB: three 1 MiB definition parts, so an
# interrupted upload can really leave a half-defined model (the default tiny model fits in one part).
MULTI_PART_VOCAB = 19_000


# ---------------------------------------------------------------------------------------------------- the stack


@dataclass
class ExampleStack:
    """manifests/ rendered with RERANK_MODEL_PATH = the tiny model; runs go through the engine's public API."""

    model_path: Path
    artifacts: Path  # traced models shared by every run of the session (tracing happens once)
    workdir: Path  # per test: the upload journals and a .env-free directory
    stack: str = STACK
    extra_vars: dict[str, str] = field(default_factory=dict)
    last_context: Any = field(default=None, repr=False, compare=False)  # of the last apply/destroy: its messages

    def resources(self) -> list[Any]:
        from provisioning import load_manifests

        variables = {"RERANK_MODEL_PATH": str(self.model_path), **self.extra_vars}
        return load_manifests(MANIFESTS, variables=variables, env_file_dir=self.workdir, stack=self.stack)

    def cache_dir(self, fresh: bool = False) -> Path:
        """A cache whose `models/` is the session's traced artifacts and whose upload journals are this test's.
        fresh=True: a new journal directory (a different CI agent that never saw the earlier runs)."""
        base = self.workdir / (f"cache-{time.monotonic_ns()}" if fresh else "cache")
        base.mkdir(parents=True, exist_ok=True)
        link = base / "models"
        if not link.exists():
            link.symlink_to(self.artifacts, target_is_directory=True)
        return base

    def context(self, client: Any, **options: Any) -> Any:
        """A context like tasks.py builds; `options` override Options (e.g. cache_dir, allow_data_loss)."""
        from provisioning import Options, Reporter, make_context

        # a long lease unless a test asks otherwise: no renewal request lands in a reference run's log (its write
        # requests are the kill points); killed runs pass a short lock_lease so the next run can take over quickly
        opts = {"wait_timeout": 60, "lock_lease": 600, **options}
        opts.setdefault("cache_dir", self.cache_dir())
        return make_context(client, stack=self.stack, options=Options(**opts), reporter=Reporter(quiet=True))

    def apply(self, client: Any, **options: Any) -> Any:
        from provisioning import converge

        self.last_context = self.context(client, **options)
        return converge(self.resources(), self.last_context, command="pytest apply")

    def destroy(self, client: Any, **options: Any) -> Any:
        from provisioning import converge

        self.last_context = self.context(client, allow_data_loss=True, **options)
        return converge(self.resources(), self.last_context, command="pytest destroy", destroy=True)

    def takeovers(self) -> list[str]:
        """The warnings of the last apply/destroy about a dead run's expired lock: taken over (an apply with changes)
        or removed (an apply with nothing left to change)."""
        messages = self.last_context.reporter.messages if self.last_context is not None else []
        return [m for m in messages if "the expired stack lock of" in m]

    def wait_out_the_lease(self, client: Any, timeout: float = 30.0) -> dict[str, Any] | None:
        """Wait until the stack's lock (left by a killed run) has expired; returns it (None: no lock left)."""
        from elasticsearch import NotFoundError

        ledger = self.context(client).ledger
        deadline = time.monotonic() + timeout
        while True:
            try:
                doc = client.get(index=LEDGER, id=f"{self.stack}:lock")["_source"]
            except NotFoundError:
                return None
            if ledger.lock_expired(doc):
                return doc
            assert time.monotonic() < deadline, f"the lock {doc} did not expire"
            time.sleep(0.02)

    def plan(self, client: Any) -> Any:
        from provisioning import make_plan

        return make_plan(self.resources(), self.context(client))


def connect(url: str, **kwargs: Any) -> Any:
    """The engine's own client configuration (retries included) pointed at a sandbox."""
    from provisioning import connect as engine_connect

    return engine_connect({}, url=url, **kwargs)


def movie_ids() -> set[str]:
    import json

    return {m["id"] for m in json.loads(MOVIES.read_text(encoding="utf-8"))}


def clear_stack_variables(monkeypatch: Any) -> None:
    for name in STACK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------------------------------------------- the log


def writes(sandbox: Sandbox, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in sandbox.log.entries(since) if e["write"]]


def wait_for_log(sandbox: Sandbox, predicate: Any, timeout: float = 5.0, minimum: int = 1) -> list[dict[str, Any]]:
    """Entries matching `predicate`, waiting until at least `minimum` are there: the sandbox records a request when
    it ends (a dropped one after closing its socket, a stalled one after the client gave up on it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in sandbox.log.entries() if predicate(e)]
        if len(found) >= minimum or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def signature(entry: dict[str, Any]) -> tuple[str, str]:
    return entry["method"], entry["path"]


def write_points(entries: Iterable[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """Each write request of a log as (method, path, occurrence): the occurrence counts earlier requests with the
    same method and path, so a kill point names the same request whatever threads interleave around it."""
    seen: dict[tuple[str, str], int] = {}
    points = []
    for entry in entries:
        key = signature(entry)
        seen[key] = seen.get(key, 0) + 1
        if entry["write"]:
            points.append((*key, seen[key]))
    return points


# ---------------------------------------------------------------------------------------------------- killing


class KillableSandbox(Sandbox):
    """A sandbox that can kill the run talking to it at a chosen request, as if the pipeline's process died there.

    Once armed, the matching request and EVERY later one are answered by dropping the connection, without touching
    the cluster: a killed process sends nothing more (not even the release of its lock). `disarm()` revives the
    cluster for the next run. `stall()` holds the first matching request for a while before serving it (a slow
    node: the client times out, the request still completes, as in ES). Everything else is the plain sandbox.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._kill_guard = threading.Lock()
        self._target: tuple[str, str, int] | None = None
        self._matched = 0
        self.killed = threading.Event()
        self._stall: tuple[str, str, float] | None = None
        self._lose: list[Any] | None = None  # [method, path, occurrence, seen]
        self.lost = threading.Event()

    def stall(self, method: str, path: str, seconds: float) -> None:
        self._stall = (method, path, seconds)

    def lose_answer(self, method: str, path: str, occurrence: int = 1) -> None:
        """Serve the matching request fully (the cluster changes), then drop the connection instead of answering:
        the write happened, the client cannot know it, and retries it."""
        with self._kill_guard:
            self._lose = [method, path, occurrence, 0]
            self.lost.clear()

    def arm(self, method: str, path: str, occurrence: int = 1) -> None:
        with self._kill_guard:
            self._target, self._matched = (method, path, occurrence), 0
            self.killed.clear()

    def disarm(self) -> None:
        with self._kill_guard:
            self._target, self._stall, self._lose = None, None, None
            self.killed.clear()
            self.lost.clear()

    def reset(self) -> None:
        self.disarm()
        super().reset()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        stall = self._stall
        if stall is not None and (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")) == stall[:2]:
            self._stall = None
            time.sleep(stall[2])
        lose = self._lose
        if lose is not None and (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")) == tuple(lose[:2]):
            with self._kill_guard:
                lose[3] += 1
                fire = lose[3] == lose[2] and not self.lost.is_set()
                if fire:
                    self.lost.set()
            if fire:
                for _ in super().wsgi(environ, lambda *args, **kwargs: None):  # served and logged as usual
                    pass
                self._drop(environ)
                return []
        if self._target is not None and not environ.get("PATH_INFO", "").startswith("/_sandbox"):
            request = Request(environ)
            with self._kill_guard:
                target = self._target
                if target is not None and not self.killed.is_set() and (request.method, request.path) == target[:2]:
                    self._matched += 1
                    if self._matched == target[2]:
                        self.killed.set()
                dead = target is not None and self.killed.is_set()
            if dead:
                # recorded BEFORE the drop: the client must not see the error before the log shows why
                self._record(request, 0, time.perf_counter(), "killed", self._is_write(request))
                self._drop(environ)
                return []
        return super().wsgi(environ, start_response)


# ---------------------------------------------------------------------------------------------------- end state


def stack_state(es: Any) -> dict[str, Any]:
    """Everything a run of the example stack can leave behind, in comparable form.

    Physical index names are replaced by their role (the alias they serve, or "ORPHAN") so that a converged
    cluster compares equal whichever generation (movies-000001, -000002 ...) the alias ended on.
    """
    indices = es.indices.get(index="*", expand_wildcards="all").body
    physical = {}
    for name, body in indices.items():
        if name.startswith("."):
            continue
        aliases = sorted(body.get("aliases") or {})
        physical[name] = aliases
    models = es.ml.get_trained_models(model_id="*", allow_no_match=True).body.get("trained_model_configs", [])
    model_ids = sorted(m["model_id"] for m in models if m.get("model_type") != "lang_ident")
    definition = {}
    for model_id in model_ids:
        config = es.ml.get_trained_models(model_id=model_id, include="definition_status").body
        definition[model_id] = config["trained_model_configs"][0].get("fully_defined")
    stats = es.ml.get_trained_models_stats(model_id="*", allow_no_match=True).body.get("trained_model_stats", [])
    deployments = sorted((s["model_id"], s["deployment_stats"]["deployment_id"], s["deployment_stats"].get("state"))
                         for s in stats if s.get("deployment_stats"))
    endpoints = sorted(e["inference_id"] for e in es.inference.get().body.get("endpoints", [])
                       if not e["inference_id"].startswith("."))
    ledger: list[str] = []
    if LEDGER in indices:
        es.indices.refresh(index=LEDGER)
        hits = es.search(index=LEDGER, size=1000, query={"match_all": {}}).body["hits"]["hits"]
        ledger = sorted(h["_id"] for h in hits if h["_id"] != IDENTITY_ID)  # the cluster's id outlives every stack
    documents = {}
    for name in physical:
        if name != LEDGER:
            es.indices.refresh(index=name)
            documents[name] = es.count(index=name).body["count"]
    roles = {name: (",".join(a) if a else "ORPHAN") for name, a in physical.items() if name != LEDGER}
    return {
        "indices": sorted(roles.values()) + ([LEDGER] if LEDGER in physical else []),
        "documents": {roles[n]: c for n, c in documents.items() if roles[n] != "ORPHAN"},
        "orphan_indices": sorted(n for n, r in roles.items() if r == "ORPHAN"),
        "models": model_ids,
        "fully_defined": definition,
        "deployments": deployments,
        "endpoints": endpoints,
        "ledger": ledger,
    }


def stored_ids(es: Any, index: str = INDEX) -> list[str]:
    es.indices.refresh(index=index)
    hits = es.search(index=index, size=1000, query={"match_all": {}}, source=False).body["hits"]["hits"]
    return sorted(h["_id"] for h in hits)


def env_without(names: Iterable[str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in set(names)}
