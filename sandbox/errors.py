"""Elasticsearch's error envelope: one exception class per error type, each producing ES's body.

Shape (ES RestResponse.build, ElasticsearchException.generateFailureXContent):
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

    def cause_dict(self, error_trace: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by.cause_dict(error_trace)
        if error_trace:
            body["stack_trace"] = self.stack_trace()
        return body

    def java_line(self) -> str:
        return f"{java_class(self.type)}: {self.reason}"

    def stack_trace(self) -> str:
        """What `?error_trace=true` adds to each cause: Java's Throwable.toString() and its "Caused by:" chain.
        ES: ElasticsearchException#toXContent writes ExceptionsHelper.stackTrace(e). The sandbox has no Java
        frames, so only the exception lines are given."""
        lines, cause = [self.java_line()], self.caused_by
        while cause is not None:
            lines.append(f"Caused by: {cause.java_line()}")
            cause = cause.caused_by
        return "\n".join(lines)

    def root_cause(self) -> EsError:
        return self.caused_by.root_cause() if self.caused_by is not None else self

    def body(self, error_trace: bool = False) -> dict[str, Any]:
        root = self.root_cause()
        root_body = {"type": root.type, "reason": root.reason, **root.extra}
        if error_trace:
            root_body["stack_trace"] = root.stack_trace()
        error = {"root_cause": [root_body], **self.cause_dict(error_trace)}
        return {"error": error, "status": self.status}


class RawError(EsError):
    """An error whose body is not the standard envelope (get_alias's string error, a missing pipeline's {})."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(str(body), status=status)
        self._body = body

    def body(self, error_trace: bool = False) -> dict[str, Any]:
        return self._body


# Java classes behind ES error types whose name is not org.elasticsearch.<CamelCase> (ElasticsearchException
# derives the type from the class name: getExceptionName() = snake_case of the simple name).
_JAVA_CLASSES = {
    "illegal_argument_exception": "java.lang.IllegalArgumentException",
    "illegal_state_exception": "java.lang.IllegalStateException",
    "number_format_exception": "java.lang.NumberFormatException",
    "x_content_parse_exception": "org.elasticsearch.xcontent.XContentParseException",
    "index_not_found_exception": "org.elasticsearch.index.IndexNotFoundException",
    "resource_already_exists_exception": "org.elasticsearch.ResourceAlreadyExistsException",
    "resource_not_found_exception": "org.elasticsearch.ResourceNotFoundException",
    "status_exception": "org.elasticsearch.ElasticsearchStatusException",
}


def java_class(es_type: str) -> str:
    if es_type in _JAVA_CLASSES:
        return _JAVA_CLASSES[es_type]
    return "org.elasticsearch." + "".join(part.capitalize() for part in es_type.split("_"))


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
