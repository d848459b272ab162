"""Elasticsearch's error envelope: one exception class per error type, each producing ES's body.

Shape (es-api-semantics.md §0.4):
{"error": {"root_cause": [{"type", "reason", ...extra}], "type", "reason", ...extra, "caused_by"?}, "status": N}
"""

from __future__ import annotations

from typing import Any


class EsError(Exception):
    """An error Elasticsearch would answer with. `status` and `type` follow ES's exception map."""

    status = 500
    type = "exception"

    def __init__(self, reason: str, *, status: int | None = None, type: str | None = None,
                 caused_by: EsError | None = None, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.caused_by = caused_by
        self.headers = headers or {}
        # ES uses dotted keys such as "resource.type"; pass them with a dict: **{"resource.type": "x"}
        self.extra = extra

    def cause_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by.cause_dict()
        return body

    def root_cause(self) -> EsError:
        return self.caused_by.root_cause() if self.caused_by is not None else self

    def body(self) -> dict[str, Any]:
        root = self.root_cause()
        root_body = {"type": root.type, "reason": root.reason, **root.extra}
        error = {"root_cause": [root_body], **self.cause_dict()}
        return {"error": error, "status": self.status}


class RawError(EsError):
    """An error whose body is not the standard envelope (get_alias's string error, a missing pipeline's {})."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(str(body), status=status)
        self._body = body

    def body(self) -> dict[str, Any]:
        return self._body


class IllegalArgument(EsError):
    status, type = 400, "illegal_argument_exception"


class ActionRequestValidation(EsError):
    status, type = 400, "action_request_validation_exception"

    def __init__(self, *problems: str):
        numbered = "".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
        super().__init__(f"Validation Failed: {numbered}")


class ParseError(EsError):
    status, type = 400, "parse_exception"


class XContentParseError(EsError):
    status, type = 400, "x_content_parse_exception"


class MapperParsing(EsError):
    status, type = 400, "mapper_parsing_exception"


class DocumentParsing(EsError):
    status, type = 400, "document_parsing_exception"


class InvalidIndexName(EsError):
    status, type = 400, "invalid_index_name_exception"

    def __init__(self, index: str, why: str):
        super().__init__(f"Invalid index name [{index}], {why}", index=index, index_uuid="_na_")


class ResourceAlreadyExists(EsError):
    status, type = 400, "resource_already_exists_exception"


class IndexNotFound(EsError):
    status, type = 404, "index_not_found_exception"

    def __init__(self, index: str, reason: str | None = None):
        super().__init__(reason or f"no such index [{index}]",
                         **{"resource.type": "index_or_alias", "resource.id": index,
                            "index_uuid": "_na_", "index": index})


class ResourceNotFound(EsError):
    status, type = 404, "resource_not_found_exception"


class StatusException(EsError):
    """ElasticsearchStatusException: the status is whatever the ES code chose."""

    type = "status_exception"

    def __init__(self, reason: str, status: int, **extra: Any):
        super().__init__(reason, status=status, **extra)


class VersionConflict(EsError):
    status, type = 409, "version_conflict_engine_exception"


class SecurityError(EsError):
    status, type = 401, "security_exception"


class Unsupported(EsError):
    """Anything outside the sandbox's subset: never a silent success."""

    status, type = 400, "sandbox_unsupported_exception"

    def __init__(self, method: str, path: str, detail: str = ""):
        extra = f": {detail}" if detail else ""
        super().__init__(f"the sandbox does not support [{method} {path}]{extra}")
