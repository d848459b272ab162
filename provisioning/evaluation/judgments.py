"""Judgments (query id, document id, grade), inline in the manifest or from a file, each with the line it came from.

Formats (`format:`, else inferred from the extension):
- `trec` (.qrels, .trec, .txt): TREC qrels, one judgment per line: `QUERY_ID ITERATION DOC_ID GRADE` separated by
  whitespace (ITERATION is ignored, usually 0); `#` starts a comment line;
- `csv` (.csv): a header row naming the columns `query_id`, `doc_id`, `grade` (any order, others ignored), then one
  judgment per row;
- `jsonl` (.jsonl, .ndjson): one JSON object per line, `{"query_id": "q1", "doc_id": "7", "grade": 3}`.
Grades are integers >= 0 (the example uses 0-3: not, somewhat, clearly, perfectly relevant).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS_BY_SUFFIX = {".qrels": "trec", ".trec": "trec", ".txt": "trec", ".csv": "csv", ".jsonl": "jsonl",
                     ".ndjson": "jsonl"}
FIELDS = ("query_id", "doc_id", "grade")


@dataclass(frozen=True)
class Judgment:
    query_id: str
    doc_id: str
    grade: int
    file: str
    line: int | None


class JudgmentError(Exception):
    def __init__(self, message: str, line: int | None, hint: str = ""):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


def judgment_format(source: str, declared: str | None) -> str:
    return declared or FORMATS_BY_SUFFIX.get(Path(source).suffix.lower(), "trec")


def _grade(value: Any, line: int | None) -> int:
    if isinstance(value, bool):
        raise JudgmentError(f"grade {value!r} is not an integer", line, "grades are integers >= 0, e.g. 0-3")
    try:
        grade = int(value)
    except (TypeError, ValueError):
        raise JudgmentError(f"grade {value!r} is not an integer", line, "grades are integers >= 0, e.g. 0-3") \
            from None
    if grade < 0 or str(grade) != str(value).strip():
        raise JudgmentError(f"grade {value!r} is not an integer >= 0", line, "grades are integers >= 0, e.g. 0-3")
    return grade


def parse_judgments(text: str, fmt: str, file: str) -> tuple[list[Judgment], list[JudgmentError]]:
    """Every judgment of a file's text, and every malformed line (each with its line)."""
    out: list[Judgment] = []
    errors: list[JudgmentError] = []

    def add(query: Any, doc: Any, grade: Any, line: int) -> None:
        try:
            if not str(query or "").strip() or not str(doc or "").strip():
                raise JudgmentError("a judgment needs a query id and a document id", line,
                                    "write query id, document id and grade")
            out.append(Judgment(str(query).strip(), str(doc).strip(), _grade(grade, line), file, line))
        except JudgmentError as exc:
            errors.append(exc)

    if fmt == "trec":
        for number, raw in enumerate(text.splitlines(), 1):
            parts = raw.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) != 4:
                errors.append(JudgmentError(f"a TREC qrels line has 4 fields, this one has {len(parts)}", number,
                                            "write QUERY_ID 0 DOC_ID GRADE"))
                continue
            add(parts[0], parts[2], parts[3], number)
    elif fmt == "csv":
        reader = csv.reader(io.StringIO(text))
        header: list[str] | None = None
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                missing = [f for f in FIELDS if f not in header]
                if missing:
                    errors.append(JudgmentError(f"the CSV header lacks the column(s) {', '.join(missing)}", number,
                                                "start the file with the header row query_id,doc_id,grade"))
                    return out, errors
                continue
            values = dict(zip(header, row, strict=False))
            add(values.get("query_id"), values.get("doc_id"), values.get("grade"), number)
    elif fmt == "jsonl":
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except json.JSONDecodeError as exc:
                errors.append(JudgmentError(f"invalid JSON on this line: {exc.msg}", number,
                                            "one JSON object per line"))
                continue
            if not isinstance(item, dict):
                errors.append(JudgmentError("a JSON lines judgment must be an object", number,
                                            '{"query_id": "q1", "doc_id": "7", "grade": 3}'))
                continue
            add(item.get("query_id"), item.get("doc_id"), item.get("grade"), number)
    else:
        errors.append(JudgmentError(f"unknown judgments format {fmt!r}", None, "use trec, csv or jsonl"))
    return out, errors


def read_judgments(path: Path, fmt: str, file: str) -> tuple[list[Judgment], list[JudgmentError]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return [], [JudgmentError(f"cannot read the judgments file: {reason or exc}", None,
                                  "the path is relative to the manifest file's folder")]
    return parse_judgments(text, fmt, file)
