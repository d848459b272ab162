"""One exception tree for the engine; tasks.py turns these into messages and exit codes in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ProvisioningError(Exception):
    """Base class. `exit_code` is what the Invoke task exits with."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in the user's input, at the user's location."""

    file: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class ManifestError(ProvisioningError):
    """Everything wrong with a manifest set, reported at once. Raised before any client exists."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(ProvisioningError):
    """Cluster connection or environment configuration is missing or wrong."""


def es_reason(exc: Any) -> str:
    """ES's own reason from an elasticsearch.ApiError's body (the client's message is only the error type)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or exc.message)
    return str(error or exc.message)


class ClusterError(ProvisioningError):
    """Elasticsearch refused a request. Carries ES's reason, the resource and its manifest location."""

    def __init__(self, message: str, *, status: int | None = None, es_type: str | None = None,
                 resource: str | None = None, location: str | None = None):
        self.status, self.es_type, self.resource, self.location = status, es_type, resource, location
        parts = [message]
        if resource:
            parts.insert(0, f"{resource}:")
        if location:
            parts.append(f"(declared at {location})")
        super().__init__(" ".join(parts))


class LockHeld(ProvisioningError):
    """Another apply or destroy holds the stack lock."""

    def __init__(self, holder: str, since: str, how_to_break: str, expires_at: str | None = None):
        self.holder, self.since, self.expires_at = holder, since, expires_at
        lease = (f" (its lease runs until {expires_at} and is renewed while that run lives; a dead run's lock is "
                 f"taken over automatically once it expires)") if expires_at else ""
        super().__init__(f"the stack is locked by {holder} since {since}{lease}; {how_to_break}")


class LockLost(ProvisioningError):
    """The lock this run held was broken or taken over (or could not be renewed): it stopped before writing more."""


class NotConverged(ProvisioningError):
    """Read-after-write still differs from the manifests."""


class Refused(ProvisioningError):
    """A safety rule refused the operation (protected resource, non-empty index, not owned, no --yes)."""


def api_error(exc: Any, *, resource: str | None = None, location: str | None = None, doing: str = "") -> ClusterError:
    """An elasticsearch.ApiError as the tool's error: ES's own error type and reason (and cause), the resource and
    its manifest location, never a request body. The one place ES errors are converted."""
    err = exc.body.get("error") if isinstance(exc.body, dict) else None
    es_type = err.get("type") if isinstance(err, dict) else None
    caused = err.get("caused_by", {}).get("reason") if isinstance(err, dict) and isinstance(
        err.get("caused_by"), dict) else None
    message = f"{doing + ': ' if doing else ''}Elasticsearch answered {exc.meta.status}"
    message += (f" {es_type}" if es_type else "") + f": {es_reason(exc)}"
    if caused:
        message += f" (caused by: {caused})"
    return ClusterError(message, status=exc.meta.status, es_type=es_type, resource=resource, location=location)
