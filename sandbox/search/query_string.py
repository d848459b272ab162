"""The `query_string` query: a subset of Lucene's classic query syntax, combined as Lucene's QueryParserBase does.

Supported: terms, "phrases"~slop, field:term, (groups), +required, -prohibited, AND/OR/NOT (&&, ||, !), ^boost,
backslash escapes, `*` / `*:*` (match all). Wildcards, fuzzy, regex and ranges are refused (400 unsupported).
A term the analyzer splits ("flesh-eating" -> flesh, eating) becomes a boolean query of its tokens joined with
`default_operator` (ES QueryStringQueryParser does not auto-generate phrase queries).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.errors import EsError

_TOKEN = re.compile(r'\s+|\(|\)|"(?:[^"\\]|\\.)*"(?:~\d+)?|(?:[^\s()"\\]|\\.)+')
MUST, SHOULD, MUST_NOT = "must", "should", "must_not"


def _unsupported(what: str) -> EsError:
    return EsError(f"the sandbox does not support {what} in query_string", status=400,
                   type="sandbox_unsupported_exception")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class _Parser:
    def __init__(self, text: str, default_and: bool):
        self.tokens = [t for t in _TOKEN.findall(text) if t.strip()]
        self.pos = 0
        self.default_and = default_and

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_query(self, field: str | None) -> tuple:
        clauses: list[list[Any]] = []  # [occur, node]
        while self.peek() is not None and self.peek() != ")":
            conj = None
            if self.peek() in ("AND", "&&", "OR", "||") and clauses:
                conj = "and" if self.next() in ("AND", "&&") else "or"
            mods = None
            if self.peek() in ("NOT", "!"):
                self.next()
                mods = "not"
            node, prefix = self.parse_clause(field)
            if prefix == "+":
                mods = "req"
            elif prefix == "-":
                mods = "not"
            self._add(clauses, conj, mods, node)
        return ("bool", clauses)

    def _add(self, clauses: list[list[Any]], conj: str | None, mods: str | None, node: tuple) -> None:
        # Lucene QueryParserBase#addClause
        if clauses and conj == "and" and clauses[-1][0] != MUST_NOT:
            clauses[-1][0] = MUST
        if clauses and self.default_and and conj == "or" and clauses[-1][0] != MUST_NOT:
            clauses[-1][0] = SHOULD
        prohibited = mods == "not"
        if not self.default_and:
            required = mods == "req" or (conj == "and" and not prohibited)
        else:
            required = not prohibited and conj != "or"
        occur = MUST_NOT if prohibited else MUST if required else SHOULD
        clauses.append([occur, node])

    def parse_clause(self, field: str | None) -> tuple[tuple, str]:
        token = self.next()
        prefix = ""
        if token[0] in "+-" and len(token) > 1:
            prefix, token = token[0], token[1:]
        elif token in ("+", "-") and self.peek() is not None:
            prefix, token = token, self.next()
        match = re.match(r"^((?:[^\s:\\]|\\.)+):(.*)$", token)
        if match and not token.startswith('"'):
            field = _unescape(match.group(1))
            token = match.group(2)
            if not token:
                token = self.next()
        if token == "(":
            node = self.parse_query(field)
            if self.peek() == ")":
                self.next()
        elif token.startswith('"'):
            body, _, slop = token.rpartition('"~') if '"~' in token else (token[:-1], "", "0")
            node = ("phrase", field, _unescape(body[1:]), int(slop or 0))
        else:
            node = self._term(field, token)
        if self.peek() is not None and self.peek().startswith("^"):
            node = ("boost", node, float(self.next()[1:]))
        return node, prefix

    def _term(self, field: str | None, token: str) -> tuple:
        boost = None
        m = re.match(r"^(.*?)(?<!\\)\^(\d+(?:\.\d+)?)$", token)
        if m:
            token, boost = m.group(1), float(m.group(2))
        if token in ("*", "*:*") or (field == "*" and token == "*"):
            node: tuple = ("all",)
        elif re.search(r"(?<!\\)[*?]", token):
            raise _unsupported("wildcard terms")
        elif re.search(r"(?<!\\)~", token):
            raise _unsupported("fuzzy terms")
        elif token.startswith(("[", "{", "/")):
            raise _unsupported("ranges and regular expressions")
        else:
            node = ("term", field, _unescape(token))
        return ("boost", node, boost) if boost is not None else node


def compile_query_string(compiler: Any, spec: dict[str, Any]) -> Any:
    if "query" not in spec:
        raise EsError("[query_string] must be provided with a [query]", status=400, type="parsing_exception")
    default_and = str(spec.get("default_operator", "or")).lower() == "and"
    fields = spec.get("fields")
    if not fields:
        fields = [spec.get("default_field", "*")]
    tie = float(spec.get("tie_breaker", 0.0))
    t = compiler.t
    occurs = {MUST: t.Occur.Must, SHOULD: t.Occur.Should, MUST_NOT: t.Occur.MustNot}
    if str(spec["query"]).strip() in ("*", "*:*"):
        return compiler.q_match_all({"boost": spec.get("boost", 1.0)})
    ast = _Parser(str(spec["query"]), default_and).parse_query(None)

    def over_fields(field: str | None, build: Any) -> Any:
        targets = compiler.fields_matching([field] if field else fields)
        parts = [q for q in (build(f, b) for f, b in targets) if q is not None]
        if not parts:
            return t.Query.empty_query()
        return parts[0] if len(parts) == 1 else t.Query.disjunction_max_query(parts, tie)

    def build(node: tuple) -> Any:
        kind = node[0]
        if kind == "all":
            return t.Query.const_score_query(t.Query.all_query(), 1.0)
        if kind == "boost":
            return t.Query.boost_query(build(node[1]), node[2])
        if kind == "term":
            return over_fields(node[1], lambda f, b: compiler.match_field(
                f, node[2], "and" if default_and else "or", None, b))
        if kind == "phrase":
            return over_fields(node[1], lambda f, b: compiler.phrase_field(f, node[2], node[3], b))
        clauses = node[1]
        if not clauses:
            return t.Query.empty_query()
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            return build(clauses[0][1])
        parts = [(occurs[occ], build(child)) for occ, child in clauses]
        if all(occ == MUST_NOT for occ, _ in clauses):
            parts.append((t.Occur.Must, t.Query.const_score_query(t.Query.all_query(), 0.0)))
        return t.Query.boolean_query(parts)

    query = build(ast)
    boost = float(spec.get("boost", 1.0))
    return query if boost == 1.0 else t.Query.boost_query(query, boost)
