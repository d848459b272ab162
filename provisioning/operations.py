"""Runs the operations of a change, exactly as planned: a Request is sent as it stands (secret markers filled in
from the environment), a Step calls its one registered implementation. Nothing here decides WHAT to do: the kinds
(diff) and the lifecycle (ownership) did that at plan time.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from provisioning.diffing import canonical_json, secret_hash
from provisioning.errors import ConfigError, Refused
from provisioning.model import SECRET_MARKER, Change, Operation, Request, Step

_HEADERS = {"accept": "application/json", "content-type": "application/json"}

# Step name -> "module:function". Implementations live beside the Elasticsearch mechanics they drive (model
# import, index replacement, bulk loading), imported only when a plan uses them (torch stays out of `plan`).
STEPS = {
    "prepare_model": "provisioning.model_import.steps:prepare_model",
    "upload_model": "provisioning.model_import.steps:upload_model",
    "wait_deployment": "provisioning.model_import.steps:wait_deployment",
    "wait_endpoint": "provisioning.model_import.steps:wait_endpoint",
    "reindex_and_count": "provisioning.reindex:reindex_and_count",
    "bulk_index": "provisioning.bulk:bulk_index",
    "bulk_delete": "provisioning.bulk:bulk_delete",
    "record_ownership": "provisioning.lifecycle:record_ownership",
    "forget_ownership": "provisioning.lifecycle:forget_ownership",
}
# Steps that learn what the ownership record must keep (run.notes: the uploaded artifact's checksum); a create that
# runs one records ownership again after it (lifecycle.wrap), the others need only the write-ahead record.
LEARNING_STEPS = frozenset({"upload_model"})


def segment(name: str) -> str:
    """One URL path segment (index, model or endpoint names), quoted as the client does."""
    return quote(str(name), safe="")


def secret_ref(env: str, value_hash: str | None) -> dict[str, Any]:
    return {SECRET_MARKER: env, "hash": value_hash}


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_MARKER in value


@dataclass
class Run:
    """What an operation sees while it runs: the engine context and the change it belongs to. Steps put what they
    learn (an artifact checksum, a physical index) into `notes`; the ownership record written after them keeps it."""

    ctx: Any
    change: Change
    notes: dict[str, Any] = field(default_factory=dict)
    salt: str | None = None
    _unplanned: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> Any:
        return self.ctx.client

    def fill_secrets(self, value: Any, setting: str | None = None) -> Any:
        """The body with every secret marker replaced by its value from the environment. A value whose hash differs
        from the planned one means the secret changed after the plan: refused, the plan is stale. A marker without
        a hash was planned without the secret (`plan` needs none): the ownership record gets the hash of the
        secrets actually sent (as the kind computes it at plan time), so the next plan has something to compare."""
        if is_secret_ref(value):
            secret = self.ctx.secret(value[SECRET_MARKER])
            planned = value.get("hash")
            if planned and self.salt and secret_hash(secret, self.salt) != planned:
                raise Refused(f"{self.change.key}: the secret in {value[SECRET_MARKER]} differs from the one the plan "
                              f"was made with; make a new plan")
            if not planned and setting is not None and self.salt:
                self._unplanned[setting] = secret  # never written anywhere: only its hash is
                self.notes["secrets_hash"] = secret_hash(canonical_json(self._unplanned), self.salt)
            return secret
        if isinstance(value, dict):
            return {k: self.fill_secrets(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill_secrets(v) for v in value]
        return value


def send(run: Run, request: Request, *, timeout: float | None = None) -> Any:
    """Send one planned request through the client (its retries, auth and compatibility headers apply)."""
    client = run.client
    options: dict[str, Any] = {}
    if request.ignore:
        options["ignore_status"] = list(request.ignore)
    if timeout is not None:
        options["request_timeout"] = timeout
    if options:
        client = client.options(**options)
    body = run.fill_secrets(request.body) if request.body is not None else None
    query = {k: (json.dumps(v) if isinstance(v, bool) else v) for k, v in request.query.items()}
    return client.perform_request(request.method, request.path, params=query or None,
                                  headers=_HEADERS if body is not None else {"accept": "application/json"},
                                  body=body)


def step_function(name: str) -> Any:
    try:
        module, _, function = STEPS[name].partition(":")
    except KeyError:
        raise ConfigError(f"unknown operation {name!r} (a plan file from another version of the tool?)") from None
    return getattr(importlib.import_module(module), function)


def run_operation(run: Run, operation: Operation) -> None:
    if isinstance(operation, Request):
        # requests that wait on the server (inference PUT with ?timeout=) get that long on the client too
        wait = run.ctx.options.wait_timeout + 30 if "timeout" in operation.query else None
        send(run, operation, timeout=wait)
    elif isinstance(operation, Step):
        step_function(operation.name)(run, **operation.args)
    else:  # pragma: no cover - the model has two operation types
        raise TypeError(operation)
