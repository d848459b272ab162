"""The data file of a `documents` resource: where it is, how to read it (with each document's line), and the checks
run at load time (readable, parses, every document has its id, values fit the declared mapping). No network: an
http(s) source is only read at apply time.

`read_documents` is what apply should use too, so that validation and loading read files the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TextIO

from provisioning.diffing import canonical_json, field_value
from provisioning.errors import Problem
from provisioning.model import Resource
from provisioning.rendering import display_path

FORMATS_BY_SUFFIX = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}
MAX_ID_BYTES = 512  # ES: IndexRequest.validate "id [...] is too long, must be no longer than 512 bytes"
MAX_PROBLEMS_PER_FILE = 10


class DataFileError(Exception):
    def __init__(self, message: str, line: int | None = None, hint: str = ""):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def is_url(source: str) -> bool:
    return bool(re.match(r"^https?://", source))


URL_TIMEOUT = 60
READ_CHUNK = 1 << 20  # characters read at a time from a JSON array: memory stays about this, whatever the file size
GZIP_MAGIC = b"\x1f\x8b"


def _gzipped(name: str) -> bool:
    return name.split("?")[0].lower().endswith(".gz")


@contextmanager
def open_text(source: str | Path) -> Iterator[TextIO]:
    """A data file or an http(s) URL as a text stream, never read whole: gzip is decompressed on the fly (a `.gz`
    name, the gzip magic bytes of a file, or `Content-Encoding: gzip`); a byte order mark is allowed."""
    with ExitStack() as stack:
        if is_url(str(source)):
            import urllib.request

            request = urllib.request.Request(str(source), headers={"Accept-Encoding": "gzip"})
            raw: BinaryIO = stack.enter_context(urllib.request.urlopen(request, timeout=URL_TIMEOUT))  # noqa: S310
            zipped = _gzipped(str(source)) or raw.headers.get("Content-Encoding", "").lower() == "gzip"
        else:
            raw = stack.enter_context(open(source, "rb"))  # noqa: SIM115 (closed by the stack)
            zipped = raw.peek(2)[:2] == GZIP_MAGIC if hasattr(raw, "peek") else False
        if zipped:
            import gzip

            raw = stack.enter_context(gzip.GzipFile(fileobj=raw))
        yield stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8-sig"))


def iter_source(source: str | Path, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line, document) of a data file or http(s) URL, in order, streamed (plan, validation and apply read data the
    same way). Errors are DataFileError, with the line when there is one."""
    try:
        with open_text(source) as text:
            yield from iter_documents(text, fmt)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"data file is not UTF-8 text ({exc.reason} at byte {exc.start})", None,
                            "save the file as UTF-8 JSON") from exc
    except (OSError, EOFError) as exc:  # EOFError: a truncated gzip stream
        raise DataFileError(f"cannot read data file: {getattr(exc, 'strerror', None) or exc}", None,
                            "the path is relative to the manifest file's folder; check it exists and is readable"
                            ) from exc


def read_source(source: str, fmt: str) -> list[Any]:
    """Every document of a data file or http(s) URL, in a list (small files only: loading streams iter_source)."""
    return [doc for _, doc in iter_source(source, fmt)]


def resolve_source(resource: Resource) -> str | Path:
    """The data file (a path relative to the manifest file's folder) or the URL."""
    source = resource.spec["source"]
    if is_url(source):
        return source
    path = Path(source)
    return path if path.is_absolute() else Path(resource.source.file).parent / path


def data_format(resource: Resource) -> str:
    """spec.format, or inferred from the file extension (.ndjson, .jsonl; a further .gz is ignored), json
    otherwise (as kinds/documents.py)."""
    if resource.spec.get("format"):
        return resource.spec["format"]
    name = resource.spec["source"].split("?")[0]
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return FORMATS_BY_SUFFIX.get(Path(name).suffix.lower(), "json")


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_documents(text: str, fmt: str) -> list[tuple[int, Any]]:
    """(line, document) for each document of a text held in memory (see iter_documents)."""
    return list(iter_documents(io.StringIO(text), fmt))


class _Window:
    """The unparsed tail of a text stream, read a chunk at a time, with the line number of any position in it
    (counted incrementally: each character is counted once)."""

    def __init__(self, stream: TextIO):
        self.stream, self.text, self.eof = stream, "", False
        self._pos, self._line = 0, 1  # text[_pos] is on line _line

    def line(self, pos: int) -> int:
        self._line += self.text.count("\n", self._pos, pos)
        self._pos = pos
        return self._line

    def more(self, keep_from: int) -> bool:
        """Drop the text before keep_from, read another chunk; False at the end of the stream."""
        chunk = "" if self.eof else self.stream.read(READ_CHUNK)
        if not chunk:
            self.eof = True
            return False  # the text stays as it is (positions in it stay valid)
        line = self.line(keep_from)
        self.text, self._pos, self._line = self.text[keep_from:] + chunk, 0, line
        return True


_WS = re.compile(r"\s*")


def _iter_ndjson(stream: TextIO) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataFileError(f"invalid JSON on this line: {exc.msg} (column {exc.colno})", number,
                                    "each line of an NDJSON file must be one JSON document") from exc


def _iter_array(stream: TextIO) -> Iterator[tuple[int, Any]]:
    """One JSON array, element by element (json.JSONDecoder.raw_decode on a window of the stream), so that memory
    holds about one chunk and errors and documents have their own line."""
    decoder, window = json.JSONDecoder(), _Window(stream)

    def skip(pos: int) -> int:  # past whitespace; reads on when the window ends in whitespace
        while True:
            pos = _WS.match(window.text, pos).end()
            if pos < len(window.text) or not window.more(pos):
                return pos
            pos = 0

    def decode(pos: int) -> tuple[Any, int, int]:  # (document, its end, its start) reading on when cut
        while True:
            try:
                doc, end = decoder.raw_decode(window.text, pos)
            except json.JSONDecodeError as exc:
                if window.more(pos):  # maybe only cut by the window: read on and try again
                    pos = 0
                    continue
                raise DataFileError(f"invalid JSON: {exc.msg}", window.line(exc.pos),
                                    "fix the JSON syntax at this line") from exc
            if end >= len(window.text) and window.more(pos):  # a number cut by the window decodes short
                pos = 0
                continue
            return doc, end, pos

    window.more(0)
    pos = skip(0)
    if window.text[pos:pos + 1] != "[":
        if window.text[pos:pos + 1]:
            decode(pos)  # a syntax error is reported as such
        raise DataFileError("a json data file must hold one array of documents", window.line(pos),
                            "wrap the documents in [...] or use format: ndjson (one document per line)")
    pos, first = skip(pos + 1), True
    while not (first and window.text[pos:pos + 1] == "]"):
        doc, end, start = decode(pos)
        yield window.line(start), doc
        first = False
        pos = skip(end)
        if window.text[pos:pos + 1] == ",":
            pos = skip(pos + 1)
            continue
        if window.text[pos:pos + 1] == "]":
            break
        raise DataFileError("invalid JSON: expected ',' or ']' between documents", window.line(pos),
                            "fix the JSON syntax at this line")
    rest = skip(pos + 1)
    if rest < len(window.text):
        raise DataFileError("invalid JSON: extra data after the array", window.line(rest), "remove it")


def iter_documents(stream: TextIO, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line, document) for each document of a text stream. JSON: one array, decoded element by element.
    NDJSON: one per line."""
    return _iter_ndjson(stream) if fmt == "ndjson" else _iter_array(stream)


def read_documents(path: Path, fmt: str) -> list[tuple[int, Any]]:
    """Every (line, document) of a local data file (in memory: for small files and tests)."""
    return list(iter_source(path, fmt))


class Desired(NamedTuple):
    """What a data file declares: {id: content hash} (None above the tracked size), the hash of the whole content
    (spec_hash of the list of documents, computed as it streams), and how many documents."""

    hashes: dict[str, str] | None
    content_hash: str
    count: int


class Scan:
    """The fingerprint of a data file, document by document. Memory: the per-id hashes up to `max_tracked`
    documents, then nothing per document."""

    def __init__(self, id_field: str, max_tracked: int):
        self.id_field, self.max_tracked = id_field, max_tracked
        self.whole = hashlib.sha256(b"[")
        self.hashes: dict[str, str] | None = {}
        self.count = self.bad = self.position = 0
        self.first_bad: int | None = None

    def add(self, doc: Any) -> None:
        value = field_value(doc, self.id_field) if isinstance(doc, dict) else None
        self.position += 1
        if value in (None, ""):
            self.bad += 1
            self.first_bad = self.position - 1 if self.first_bad is None else self.first_bad
            return
        text = canonical_json(doc).encode()
        self.whole.update(b"," + text if self.count else text)  # = canonical_json(list of documents), streamed
        self.count += 1
        if self.hashes is not None:
            self.hashes[str(value)] = hashlib.sha256(text).hexdigest()[:12]  # = documents.doc_hash(doc)
            if len(self.hashes) > self.max_tracked:
                self.hashes = None  # a constant-size record from here on: the content hash and the count

    def result(self) -> tuple[Desired, int, int | None]:
        whole = self.whole.copy()
        whole.update(b"]")
        count = len(self.hashes) if self.hashes is not None else self.count  # the last document of an id wins
        return Desired(self.hashes, "sha256:" + whole.hexdigest()[:32], count), self.bad, self.first_bad


SCANNED: dict[tuple[Any, ...], tuple[Desired, int, int | None]] = {}  # scans of this process, by file version
MAX_SCANNED = 64


def scan_key(source: str | Path, fmt: str, id_field: str, max_tracked: int) -> tuple[Any, ...]:
    """A scan's key: the file's path, size and modification time (a changed file is read again; a URL is read
    once per process)."""
    source = str(source)
    stamp = None
    if not is_url(source):
        stat = Path(source).stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    return source, fmt, id_field, max_tracked, stamp


def remember(key: tuple[Any, ...], result: tuple[Desired, int, int | None]) -> None:
    if len(SCANNED) >= MAX_SCANNED:
        SCANNED.pop(next(iter(SCANNED)))
    SCANNED[key] = result


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _integer_in(low: int, high: int) -> Callable[[Any], bool]:
    # ES coerces numeric strings and truncates decimals, but rejects values out of the type's range
    # (NumberFieldMapper: "Value [300] is out of range for a byte").
    def check(value: Any) -> bool:
        return _number(value) and low <= float(value) <= high
    return check


_SCALAR = (str, int, float, bool)
# What Elasticsearch 9.x accepts per field type with default parameters (coerce on). Types absent here are not checked.
ACCEPTS: dict[str, Callable[[Any], bool]] = {
    "long": _integer_in(-(2**63), 2**63 - 1),
    "integer": _integer_in(-(2**31), 2**31 - 1),
    "short": _integer_in(-(2**15), 2**15 - 1),
    "byte": _integer_in(-(2**7), 2**7 - 1),
    "unsigned_long": _integer_in(0, 2**64 - 1),
    "double": _number, "float": _number, "half_float": _number, "scaled_float": _number,
    "boolean": lambda v: isinstance(v, bool) or v in ("true", "false", ""),
    "keyword": lambda v: isinstance(v, _SCALAR), "text": lambda v: isinstance(v, _SCALAR),
    "match_only_text": lambda v: isinstance(v, _SCALAR), "wildcard": lambda v: isinstance(v, _SCALAR),
    "semantic_text": lambda v: isinstance(v, str),
    "date": lambda v: isinstance(v, str | int) and not isinstance(v, bool),
    "date_nanos": lambda v: isinstance(v, str | int) and not isinstance(v, bool),
    "ip": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict), "flattened": lambda v: isinstance(v, dict),
}
WHOLE_VALUE = {  # types whose value is itself a list or an object (not checked element by element)
    "dense_vector": lambda v: isinstance(v, str) or (isinstance(v, list) and all(_number(x) for x in v)),
    "nested": lambda v: isinstance(v, dict) or (isinstance(v, list) and all(isinstance(x, dict) for x in v)),
}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def mapping_errors(doc: dict[str, Any], properties: dict[str, Any], dynamic: Any, prefix: str = "") -> list[str]:
    """Why a document does not fit `properties` (nested objects walked, dotted keys expanded). Runs once per
    document of a data file before any write, so the common case (a mapped scalar) takes the fewest steps."""
    errors: list[str] = []
    if not isinstance(properties, dict):
        properties = {}
    for key, value in doc.items():
        if "." in key:
            head, _, rest = key.partition(".")
            if rest and head not in doc:  # "a.b": 1 is the object {"a": {"b": 1}} to Elasticsearch
                key, value = head, {rest: value}
        field = properties.get(key)
        if not isinstance(field, dict):
            if str(dynamic).lower() == "strict":
                errors.append(f"field {prefix + key!r} is not in the mapping and the mapping is dynamic: strict")
            continue
        if value is None:
            continue
        ftype = field.get("type", "object" if "properties" in field else None)
        if ftype in WHOLE_VALUE:
            if not WHOLE_VALUE[ftype](value):
                errors.append(f"field {prefix + key!r}: {_short(value)} is not a valid {ftype}")
            continue
        accepts = ACCEPTS.get(ftype)
        for item in value if isinstance(value, list) else (value,):
            if item is None:
                continue
            if ftype in ("object", None) and isinstance(item, dict):
                errors += mapping_errors(item, field.get("properties", {}), field.get("dynamic", dynamic),
                                         f"{prefix}{key}.")
            elif accepts is not None and not accepts(item):
                errors.append(f"field {prefix + key!r}: {_short(item)} is not a valid {ftype}")
    return errors


def _key_line(path: Path, doc_line: int, error: str) -> int:
    """The line of the offending key inside a multi-line document (a pretty-printed JSON array), else the
    document's own line: the first `"key":` at or after the document's start, before the next document."""
    match = re.match(r"field '([^']+)'", error)
    if not match:
        return doc_line
    key = match.group(1).rpartition(".")[2]
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return doc_line
    pattern = re.compile(r'"' + re.escape(key) + r'"\s*:')
    for number in range(doc_line, len(lines) + 1):
        text = lines[number - 1]
        if number > doc_line and re.match(r"\s*\},?\s*$|\s*\{\s*$", text):
            break  # the document ended: keep its own line
        if pattern.search(text):
            return number
    return doc_line


def check_documents(resource: Resource, resources: dict[str, Resource], max_tracked: int = 10_000) -> list[Problem]:
    """Load-time checks of a documents resource's data (skipped for URLs: nothing touches the network here)."""
    spec = resource.spec
    where = resource.line_of("spec.source")
    if is_url(spec["source"]):
        return []
    fmt = data_format(resource)
    path = Path(resolve_source(resource))
    shown = display_path(path)
    problems: list[Problem] = []
    try:
        key: tuple[Any, ...] | None = scan_key(path, fmt, spec["id_field"], max_tracked)
    except OSError:
        key = None  # the stream reports it
    scan = Scan(spec["id_field"], max_tracked)
    try:
        _check_stream(resource, resources, path, shown, fmt, problems, scan)
        if key is not None:
            remember(key, scan.result())  # the plan's fingerprint, from this same pass over the file
    except DataFileError as exc:
        file, line = (shown, exc.line) if exc.line else (where.file, where.line)
        message = exc.message if exc.line else f"{exc.message}: {shown}"
        problems.append(Problem(file, line, message, exc.hint + f" (data of {resource.key}, declared at {where})"))
    if len(problems) > MAX_PROBLEMS_PER_FILE:
        rest = len(problems) - MAX_PROBLEMS_PER_FILE
        problems = problems[:MAX_PROBLEMS_PER_FILE] + [
            Problem(shown, None, f"... and {rest} more problems in this file", "fix the ones above first")]
    return problems


def _check_stream(resource: Resource, resources: dict[str, Resource], path: Path, shown: str, fmt: str,
                  problems: list[Problem], scan: Scan) -> None:
    """The checks, document by document as the file streams (memory: the ids seen, for duplicates)."""
    spec = resource.spec
    where = resource.line_of("spec.source")
    id_field, seen = spec["id_field"], {}
    index = resources.get(f"index/{spec['index']}")
    mappings = (index.spec.get("mappings") or {}) if index else {}
    for line, doc in iter_source(path, fmt):
        scan.add(doc)
        if not isinstance(doc, dict):
            problems.append(Problem(shown, line, "a document must be a JSON object", "remove or fix this entry"))
            continue
        doc_id = field_value(doc, id_field)
        if doc_id is None or doc_id == "":
            problems.append(Problem(shown, line, f"document has no id field {id_field!r}",
                                    f"add {id_field!r} to every document, or change spec.id_field at {where}"))
        elif isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
            problems.append(Problem(shown, line, f"id field {id_field!r} must be a string or an integer",
                                    "use a scalar id so re-applying overwrites the same document"))
        elif len(str(doc_id).encode()) > MAX_ID_BYTES:
            problems.append(Problem(shown, line, f"id is longer than {MAX_ID_BYTES} bytes", "use a shorter id"))
        elif str(doc_id) in seen:
            problems.append(Problem(shown, line, f"duplicate id {str(doc_id)!r} (first at line {seen[str(doc_id)]})",
                                    "ids must be unique: the later document would silently replace the earlier"))
        else:
            seen[str(doc_id)] = line
        if index:
            for error in mapping_errors(doc, mappings.get("properties") or {}, mappings.get("dynamic", True)):
                exact = fmt == "json" and len(problems) < MAX_PROBLEMS_PER_FILE  # (reads the file again)
                problems.append(Problem(shown, _key_line(path, line, error) if exact else line, error,
                                        f"fix the document or the mapping of {index.key} at "
                                        f"{index.line_of('spec.mappings')}"))
