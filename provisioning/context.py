"""What every kind's write and read methods receive: the client, the stack, the ledger, options, a reporter.

Kinds (see kinds/base.py) use ctx.client, ctx.stack, ctx.ledger, ctx.options, ctx.reporter and
ctx.secret(env_name); nothing else is guaranteed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioning.diffing import MASK
from provisioning.errors import ConfigError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from provisioning.ledger import Ledger


class _RedactSecrets(logging.Filter):
    """Masks, in log records, every secret value this process read through Context.secret. The client's opt-in wire
    trace (logger elastic_transport.node, e.g. after elastic_transport.debug_logging()) prints request bodies
    verbatim, and PUT _inference carries an endpoint's api_key in its body; the Authorization header the client
    hides itself."""

    values: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        values = list(self.values)  # a snapshot: another thread may read a secret meanwhile
        if values:
            message = record.getMessage()
            if any(value in message for value in values):
                for value in values:
                    message = message.replace(value, MASK)
                record.msg, record.args = message, ()
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
    lock_lease: float | None = None  # seconds the stack lock outlives a dead run (None: $ES_STACK_LOCK_LEASE or 60)


class Progress:
    """A minimal progress handle (tqdm-like: update(n), close(), context manager)."""

    def __init__(self, bar: Any = None):
        self._bar = bar

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reporter:
    """Where the engine tells the user what it is doing. Thread-safe; quiet mode collects messages only.

    Messages must never contain secrets: kinds pass names and counts, never values read from the environment.
    """

    def __init__(self, stream: Any = None, *, quiet: bool = False, show_progress: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.messages: list[str] = []
        self._lock = threading.Lock()
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.show_progress = (is_tty and not quiet) if show_progress is None else show_progress

    def info(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)
            if not self.quiet:
                print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        self.info(f"warning: {message}")

    def progress(self, description: str, total: int | None = None) -> Progress:
        """A progress bar on a terminal; a silent handle otherwise (pipelines get one line per step instead)."""
        if not self.show_progress:
            return Progress()
        from tqdm import tqdm

        return Progress(tqdm(total=total, desc=description, file=self.stream, leave=False))


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
        _RedactSecrets.values.add(value)
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
