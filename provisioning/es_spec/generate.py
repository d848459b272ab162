"""Derive provisioning/es_spec/es_spec.json from Elasticsearch's own API specification.

Source: https://github.com/elastic/elasticsearch-specification (the TypeScript definitions under specification/,
which also generate the official clients). Run from the project root:

    python -m provisioning.es_spec.generate /path/to/elasticsearch-specification [commit]

It reads the .ts files with a small parser (classes, enums, type aliases; comments dropped) and keeps only what
offline validation needs: field types and their parameters (specification/_types/mapping), index settings
(specification/indices/_types/IndexSettings.ts), the analysis component types (specification/_types/analysis),
query and retriever names with their parameters (specification/_types/query_dsl, _types/Retriever.ts) and, per
inference service, its task types, service_settings and task_settings (specification/inference/put_*).
The output is committed; the tool never needs the specification at run time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).with_name("es_spec.json")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BUILTIN_TYPES = {"string", "boolean", "integer", "long", "float", "double", "short", "byte", "uint", "ulong",
                 "null", "UserDefinedValue", "Field", "Fields", "Id", "Ids", "Name", "Names", "IndexName",
                 "Dictionary", "SingleKeyDictionary", "Stringified", "WithNullValue", "Array"}


def _with_aliases(match: re.Match) -> str:
    """A field documented `@aliases a, b` (e.g. aggregations/aggs) also accepts those names: add them as fields."""
    aliases = re.search(r"@aliases\s+([\w, ]+)", match.group(1))
    if not aliases:
        return match.group(2) + match.group(3) + match.group(4)
    typ = match.group(4).lstrip("?")
    extra = "".join(f"\n  {a.strip()}?{typ}" for a in aliases.group(1).split(",") if a.strip())
    return match.group(2) + match.group(3) + match.group(4) + extra


def strip_comments(text: str) -> str:
    documented_field = r"/\*\*((?:(?!\*/).)*)\*/(?:[ \t]*//[^\n]*)?(\s*)('?[\w.@]+'?)(\??:[^\n]*)"
    text = re.sub(documented_field, _with_aliases, text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"^\s*//.*$|\s//.*$", "", text, flags=re.M)


class Spec:
    def __init__(self, root: Path):
        self.classes: dict[str, dict] = {}  # name -> {extends, implements, fields: {name: (type, required)}}
        self.enums: dict[str, list[str]] = {}
        self.aliases: dict[str, str] = {}
        self.requests: dict[str, str] = {}  # path -> raw text (inference put requests)
        for path in sorted(root.rglob("*.ts")):
            text = strip_comments(path.read_text(encoding="utf-8"))
            self._parse(text)
            if "/inference/put_" in path.as_posix() and path.name.endswith("Request.ts"):
                self.requests[path.parent.name] = text

    def _parse(self, text: str) -> None:
        for match in re.finditer(r"export (?:class|interface) (\w+)(?:<[^{]*?>)?([^{]*)\{", text):
            name, header = match.group(1), match.group(2)
            body, _ = _block(text, match.end() - 1)
            ext = re.search(r"extends\s+(\w+)", header)
            self.classes.setdefault(name, {
                "extends": ext.group(1) if ext else None,
                "open": "AdditionalPropert" in header,
                "fields": _fields(body),
            })
        for match in re.finditer(r"export enum (\w+)\s*\{", text):
            body, _ = _block(text, match.end() - 1)
            values = []
            for item in body.split(","):
                item = item.strip()
                if not item:
                    continue
                value = re.search(r"=\s*'([^']*)'", item) or re.match(r"'([^']*)'", item)
                plain = IDENT.match(item)
                if value or plain:
                    values.append(value.group(1) if value else plain.group(0))
            self.enums[match.group(1)] = values
        for match in re.finditer(r"export type (\w+)(?:<[^=]*>)?\s*=", text):
            # the expression: its first line, then every following line that continues a union (`| X`)
            lines = [line.strip() for line in text[match.end():].splitlines()]
            expr = [lines[0]] if lines else []
            for line in lines[1:]:
                if line.startswith("|") or (not line and expr) or (expr and expr[-1].endswith(("|", "="))):
                    expr.append(line)
                elif expr == [""]:
                    expr = [line]
                else:
                    break
            self.aliases[match.group(1)] = " ".join(" ".join(expr).split()).lstrip("| ")

    def all_fields(self, name: str) -> dict[str, tuple[str, bool]]:
        cls = self.classes.get(name)
        if cls is None:
            return {}
        inherited = self.all_fields(cls["extends"]) if cls["extends"] else {}
        return {**inherited, **cls["fields"]}

    def is_open(self, name: str) -> bool:
        cls = self.classes.get(name)
        return bool(cls) and (cls["open"] or (cls["extends"] is not None and self.is_open(cls["extends"])))

    def union_members(self, name: str) -> list[str]:
        """Class names of a union type alias, aliases expanded."""
        if name in self.classes:
            return [name]
        if name not in self.aliases:
            return []
        out = []
        for part in self.aliases[name].split("|"):
            part = part.strip()
            if IDENT.fullmatch(part):
                out += self.union_members(part)
        return out

    def tag(self, cls: str, key: str = "type") -> str | None:
        field = self.all_fields(cls).get(key)
        if field:
            literal = re.fullmatch(r"'([^']*)'", field[0])
            if literal:
                return literal.group(1)
        return None


def _block(text: str, start: int) -> tuple[str, int]:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i
    return text[start + 1:], len(text)


def _fields(body: str) -> dict[str, tuple[str, bool]]:
    fields = {}
    depth = 0
    for line in body.splitlines():
        if depth == 0:
            m = re.match(r"^\s*'?([\w.@]+)'?(\?)?\s*:\s*(.*)$", line)
            if m:
                fields[m.group(1)] = (m.group(3).strip().rstrip(";,"), not m.group(2))
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
        depth = max(depth, 0)
    return fields


def _type_refs(spec: Spec, type_text: str) -> list[str]:
    """The named types a field's type mentions, with what they mean for validation."""
    return sorted({t for t in IDENT.findall(type_text)
                   if t not in BUILTIN_TYPES and (t in spec.classes or t in spec.aliases or t in spec.enums)})


def field_types(spec: Spec) -> dict[str, list[str]]:
    out = {}
    for cls in spec.union_members("Property"):
        tag = spec.tag(cls)
        if tag and not tag.startswith("{"):
            out[tag] = sorted(spec.all_fields(cls))
    return dict(sorted(out.items()))


def analysis(spec: Spec) -> dict[str, dict[str, list[str]]]:
    unions = {"analyzer": "Analyzer", "tokenizer": "TokenizerDefinition", "filter": "TokenFilterDefinition",
              "char_filter": "CharFilterDefinition", "normalizer": "Normalizer"}
    out = {}
    for section, union in unions.items():
        types = {}
        for cls in spec.union_members(union):
            tag = spec.tag(cls)
            if tag:
                types[tag] = sorted(spec.all_fields(cls))
        out[section] = dict(sorted(types.items()))
    return out


def settings_tree(spec: Spec, cls: str, depth: int = 0) -> dict:
    """{key: {"type": raw type, "children": {...}}} for IndexSettings, nested classes expanded (3 levels)."""
    tree = {}
    for key, (type_text, _) in sorted(spec.all_fields(cls).items()):
        node: dict = {"type": type_text}
        child = IDENT.fullmatch(type_text)
        if child and child.group(0) in spec.classes and child.group(0) != cls and depth < 3 \
                and child.group(0) != "IndexSettingsAnalysis":
            node["children"] = settings_tree(spec, child.group(0), depth + 1)
            node["open"] = spec.is_open(child.group(0))
        if child and child.group(0) in spec.enums:
            node["enum"] = spec.enums[child.group(0)]
        tree[key] = node
    return tree


def search_classes(spec: Spec) -> tuple[dict, dict, dict]:
    """Queries and retrievers by name, and every class reachable from them with its fields."""
    classes: dict[str, dict] = {}
    todo: list[str] = []

    def entry(type_text: str) -> dict:
        keyed = re.fullmatch(r"SingleKeyDictionary<Field,\s*(\w+)>", type_text)
        if keyed:
            todo.append(keyed.group(1))
            return {"class": keyed.group(1), "field_keyed": True}
        todo.append(type_text)
        return {"class": type_text}

    queries = {name: entry(t) for name, (t, _) in spec.all_fields("QueryContainer").items()}
    retrievers = {name: entry(t) for name, (t, _) in spec.all_fields("RetrieverContainer").items()}
    while todo:
        name = todo.pop()
        if name in classes or name not in spec.classes or name in ("QueryContainer", "RetrieverContainer"):
            for member in spec.union_members(name) if name in spec.aliases else []:
                todo.append(member)
            continue
        fields = spec.all_fields(name)
        classes[name] = {"fields": {k: t for k, (t, _) in sorted(fields.items())},
                         "required": sorted(k for k, (_, req) in fields.items() if req),
                         "open": spec.is_open(name)}
        for type_text, _ in fields.values():
            for ref in _type_refs(spec, type_text):
                todo += [ref] + (spec.union_members(ref) if ref in spec.aliases else [])
    return queries, retrievers, dict(sorted(classes.items()))


def inference(spec: Spec) -> dict[str, dict]:
    out = {}
    for folder, text in sorted(spec.requests.items()):
        body = re.search(r"body:\s*\{(.*?)\}", text, re.S)
        task = re.search(r"task_type:\s*(\w+)", text)
        if not body or not task:
            continue
        fields = _fields(body.group(1))
        service_type = fields.get("service", ("", True))[0]
        services = spec.enums.get(service_type) or []
        settings_cls = fields.get("service_settings", ("", True))[0]
        task_cls = fields.get("task_settings", ("", True))[0]
        for service in services:
            ss = spec.all_fields(settings_cls)
            out[service] = {
                "request": folder,
                "task_types": spec.enums.get(task.group(1), []),
                "service_settings": sorted(ss),
                "required_service_settings": sorted(k for k, (_, req) in ss.items() if req),
                "service_settings_open": spec.is_open(settings_cls),
                "task_settings": sorted(spec.all_fields(task_cls)) if task_cls in spec.classes else None,
                "task_settings_open": spec.is_open(task_cls) if task_cls in spec.classes else True,
            }
    return out


def main(argv: list[str]) -> None:
    repo = Path(argv[1])
    commit = argv[2] if len(argv) > 2 else subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                                                          capture_output=True, text=True).stdout.strip()
    spec = Spec(repo / "specification")
    queries, retrievers, classes = search_classes(spec)
    data = {
        "source": {"repository": "https://github.com/elastic/elasticsearch-specification", "commit": commit,
                   "generator": "provisioning/es_spec/generate.py"},
        "field_types": field_types(spec),
        "index_settings": settings_tree(spec, "IndexSettings"),
        "analysis": analysis(spec),
        "queries": queries,
        "retrievers": retrievers,
        "search_classes": classes,
        "search_request": sorted(spec.all_fields("SearchRequestBody") or _search_body(spec)),
        "inference_task_types": spec.enums.get("TaskType", []),
        "inference_services": inference(spec),
    }
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) from commit {commit}")


def _search_body(spec: Spec) -> dict:
    """The body keys of specification/_global/search/SearchRequest.ts."""
    path = Path(sys.argv[1]) / "specification" / "_global" / "search" / "SearchRequest.ts"
    text = strip_comments(path.read_text(encoding="utf-8"))
    body = re.search(r"\bbody\??:\s*\{", text)
    inner, _ = _block(text, body.end() - 1)
    return _fields(inner)


if __name__ == "__main__":
    main(sys.argv)
