"""What every kind's write and read methods receive: the client, the stack, the ledger, options, a reporter.

Kinds (see kinds/base.py) use ctx.client, ctx.stack, ctx.ledger, ctx.options, ctx.reporter and
ctx.secret(env_name); nothing else is guaranteed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.errors import ConfigError
from provisioning.output import REDACTOR

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from provisioning.ledger import Ledger


class _RedactSecrets(logging.Filter):
    """Masks, in log records, every secret value this process holds (provisioning.output.REDACTOR, the one choke
    point: every encoding of each value). The client's opt-in wire trace (logger elastic_transport.node, e.g. after
    elastic_transport.debug_logging()) prints request bodies verbatim, and PUT _inference carries an endpoint's
    api_key in its body; the Authorization header the client hides itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if REDACTOR.values:
            message = record.getMessage()
            masked = REDACTOR(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return True


_REDACT = _RedactSecrets()
for _name in ("elastic_transport.node", "elastic_transport.transport", "elasticsearch"):
    logging.getLogger(_name).addFilter(_REDACT)


@dataclass
class Options:
    """Knobs of one run. Defaults suit a small stack on a small cluster."""

    wait_timeout: float = 600.0  # seconds to wait for asynchronous work (deployments, reindex tasks)
    wait_for: str = "fully_allocated"  # deployments: "fully_allocated" (Elastic's advice) or "started"
    parallelism: int = 4  # independent changes applied at once
    allow_data_loss: bool = False  # destroy/delete may remove indices that hold documents
    upload_workers: int | None = None  # parts uploaded at once (None: $ES_STACK_UPLOAD_WORKERS or upload.py default)
    cache_dir: Path = field(default_factory=lambda: Path(".cache") / "es-stack")  # traced models, downloads
    require_secrets: bool = True  # False for plan/status: a missing write-only secret is planned as unknown
    lock_lease: float | None = None  # seconds the stack lock outlives a dead run (None: $ES_STACK_LOCK_LEASE or 60)


PROGRESS_INTERVAL = 10.0  # seconds between plain progress lines when not on a terminal ($ES_STACK_PROGRESS_INTERVAL)


def progress_interval(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    try:
        return max(0.05, float(env.get("ES_STACK_PROGRESS_INTERVAL") or PROGRESS_INTERVAL))
    except ValueError:
        return PROGRESS_INTERVAL


class Progress:
    """A progress handle (tqdm-like: update(n), close(), context manager): a bar on a terminal, a plain line every
    `interval` seconds elsewhere (a CI log), nothing in quiet mode."""

    def __init__(self, bar: Any = None, *, reporter: Reporter | None = None, description: str = "",
                 total: int | None = None):
        self._bar, self._reporter, self.description, self.total = bar, reporter, description, total
        self.count = 0
        self._started = self._last = time.monotonic()

    def _line(self) -> str:
        of = f" of {self.total}" if self.total else ""
        return f"{self.description}: {self.count}{of} ({time.monotonic() - self._started:.0f}s)"

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._reporter is not None:
            now = time.monotonic()
            if now - self._last >= self._reporter.interval:
                self._last = now
                self._reporter.info(self._line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._reporter is not None and self.count and time.monotonic() - self._started >= \
                self._reporter.interval:
            self._reporter.info(self._line() + " done")
            self._reporter = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reporter:
    """Where the engine tells the user what it is doing (stderr). Thread-safe; quiet mode collects messages only.

    Messages must never contain secrets: kinds pass names and counts, never values read from the environment (the
    CLI redacts its streams too). The applier calls change_started/change_finished: the reporter keeps what
    finished (with its time) and what is in flight, for the final summary and for an interrupt.
    """

    def __init__(self, stream: Any = None, *, quiet: bool = False, show_progress: bool | None = None,
                 verbose: bool = False, interval: float | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.interval = progress_interval() if interval is None else interval
        self.messages: list[str] = []
        self._lock = threading.Lock()
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.show_progress = (is_tty and not quiet) if show_progress is None else show_progress
        self.finished: list[tuple[str, str, float]] = []  # (key, action, seconds)
        self.in_flight: dict[str, tuple[str, float]] = {}  # key -> (action, started)

    def info(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)
            if not self.quiet:
                print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        with self._lock:
            self.messages.append(f"warning: {message}")
            print(f"warning: {message}", file=self.stream, flush=True)  # warnings show even in quiet mode

    def debug(self, message: str) -> None:
        if self.verbose:
            self.info(message)

    def progress(self, description: str, total: int | None = None) -> Progress:
        """A progress bar on a terminal; periodic plain lines otherwise; silent in quiet mode."""
        if self.quiet:
            return Progress()
        if not self.show_progress:
            return Progress(reporter=self, description=description, total=total)
        from tqdm import tqdm

        return Progress(tqdm(total=total, desc=description, file=self.stream, leave=False))

    def change_started(self, key: str, action: str) -> None:
        with self._lock:
            self.in_flight[key] = (action, time.monotonic())
        self.info(f"{key}: {action} ...")

    def change_finished(self, key: str, action: str) -> None:
        with self._lock:
            _, started = self.in_flight.pop(key, (action, time.monotonic()))
            self.finished.append((key, action, time.monotonic() - started))
        self.info(f"{key}: {action} done ({time.monotonic() - started:.1f}s)")

    def change_failed(self, key: str) -> None:
        with self._lock:
            self.in_flight.pop(key, None)


@dataclass
class Context:
    """One run of the engine against one cluster and one stack."""

    client: Elasticsearch
    stack: str = "default"
    ledger: Ledger | None = None  # set by make_context; None only in pure unit tests
    options: Options = field(default_factory=Options)
    reporter: Reporter = field(default_factory=lambda: Reporter(quiet=True))
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    plan: Any = None  # the plan being applied (set by the applier): kinds may ask what else it does

    def secret(self, env_name: str) -> str:
        """A secret read from the environment at apply time. The error names the variable, never a value."""
        value = self.environ.get(env_name)
        if not value:
            raise ConfigError(f"environment variable {env_name} is not set (a manifest reads a secret from it); "
                              f"set it in the environment or in .env")
        REDACTOR.add(value)
        return value


def make_context(client: Elasticsearch, *, stack: str = "default", options: Options | None = None,
                 reporter: Reporter | None = None, environ: Mapping[str, str] | None = None) -> Context:
    """A Context with its ledger attached (the ledger is not read until the planner loads it)."""
    from provisioning.ledger import Ledger

    ctx = Context(client=client, stack=stack, options=options or Options(),
                  reporter=reporter or Reporter(quiet=True),
                  environ=os.environ if environ is None else environ)
    ctx.ledger = Ledger(client, stack)
    return ctx
