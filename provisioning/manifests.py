"""Manifest loading: render (Jinja), parse (YAML with line numbers), validate, and return Resources.

Everything happens before any client exists and nothing touches the network: a broken manifest set raises one
ManifestError listing every problem in every file, each at its file and line, with what to do.

Entry points: `load_manifests(...)` (validate/plan/apply) and `render_manifests(...)` (`invoke render`).
Defaults: `.env` files are read from `env_file_dir`, by default the manifests folder's parent (the project root);
templates come from `templates/` beside the manifests folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from provisioning.errors import ManifestError, Problem
from provisioning.model import Document, Resource
from provisioning.rendering import MANIFEST_LIKE, Rendered, Renderer, display_path, manifest_files, stray_files
from provisioning.variables import environment_problems, load_variables

__all__ = ["load_manifests", "render_manifests", "Document", "parse_yaml_documents"]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose timestamps stay strings (Elasticsearch wants the text, and JSON has no dates)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same on libyaml's parser (5x faster on a large stack); a file it refuses is parsed again by _Loader, whose
    error marks the messages are written for."""


_FastLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _build(loader: _Loader, node: yaml.Node, path: str, lines: dict[str, int], problems: list[tuple[int, str, str]],
           to_line) -> Any:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = _key(loader, key_node), to_line(key_node.start_mark.line + 1)
            if key in seen:
                # PyYAML keeps the last value silently; that hides a mistake, so it is an error here
                problems.append((line, f"duplicate key {key!r} (first at line {seen[key]})",
                                 "remove one of them: YAML would silently keep only the last"))
            else:
                seen[key] = line
        loader.flatten_mapping(node)  # `<<: *anchor` merges, explicit keys winning
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(loader, key_node)
            child = f"{path}.{key}" if path else key
            lines.setdefault(child, to_line(key_node.start_mark.line + 1))
            result[key] = _build(loader, value_node, child, lines, problems, to_line)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            child = f"{path}.{i}" if path else str(i)
            lines.setdefault(child, to_line(item.start_mark.line + 1))
            items.append(_build(loader, item, child, lines, problems, to_line))
        return items
    return loader.construct_object(node, deep=True)


def _key(loader: _Loader, node: yaml.Node) -> str:
    """A mapping key as a string (JSON and Elasticsearch keys are strings): `on:` or `1:` stay as written."""
    key = loader.construct_object(node, deep=True)
    if isinstance(key, str):
        return key
    return node.value if isinstance(node, yaml.ScalarNode) else str(key)


def parse_yaml_documents(text: str, file: str, to_line=lambda n: n,
                         loader_class: type | None = None) -> tuple[list[Document], list[Problem]]:
    """Every document of a YAML stream with the line of each key; `to_line` maps a rendered line to a source line.
    A syntax error ends the file (the stream cannot be resumed) and is reported at its line."""
    if loader_class is None:
        documents, problems = parse_yaml_documents(text, file, to_line, _FastLoader)
        if not any(p.message.startswith("YAML") for p in problems):
            return documents, problems
        loader_class = _Loader
    documents, problems = [], []
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[str, int] = {}
            found: list[tuple[int, str, str]] = []
            value = _build(loader, node, "", lines, found, to_line)
            problems += [Problem(file, line, message, hint) for line, message, hint in found]
            if value is None:  # an empty document (a stray `---`)
                continue
            documents.append(Document(file, value, to_line(node.start_mark.line + 1), lines))
    except yaml.MarkedYAMLError as exc:
        line, what, hint = _yaml_error_line(exc, text)
        problems.append(Problem(file, to_line(line) if line else None, f"YAML syntax error: {what}", hint))
    except yaml.YAMLError as exc:
        problems.append(Problem(file, None, f"YAML error: {exc}", "check the file is valid YAML"))
    finally:
        loader.dispose()
    return documents, problems


def _yaml_error_line(exc: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str, str]:
    """(1-based line, message, hint) of a YAML error at the line of the mistake, not where the parser noticed it:
    an unclosed quote is reported where the quote opens (PyYAML's problem mark is the end of the file); an unclosed
    `{`/`[` where it opens (the problem mark is the next line's key); a key missing its `:` on the line before the
    one PyYAML names (it read both lines as one plain scalar)."""
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(p for p in (exc.context, exc.problem) if p)
    hint = ("check indentation and quoting at this line (no tabs; quote values containing ': ', ' #', or starting "
            "with a special character)")
    if mark is None:
        return None, what, hint
    lines = text.splitlines()
    line = mark.line + 1
    context = exc.context_mark.line + 1 if exc.context_mark else None
    if context and "quoted scalar" in (exc.context or ""):
        return context, what, "close the quote opened on this line"
    if context and context < line and "flow" in (exc.context or ""):
        opened = lines[context - 1] if context <= len(lines) else ""
        if opened.count("{") > opened.count("}") or opened.count("[") > opened.count("]"):
            return context, what, "close the { or [ opened on this line (or quote the value)"
    if "mapping values are not allowed" in (exc.problem or "") and 1 < line <= len(lines):
        current = lines[line - 1]
        indent = len(current) - len(current.lstrip())
        previous = next((n for n in range(line - 1, 0, -1) if lines[n - 1].strip()
                         and not lines[n - 1].lstrip().startswith("#")), None)
        if previous is not None:
            before = lines[previous - 1]
            same_level = len(before) - len(before.lstrip()) == indent
            if same_level and ":" not in before and not before.lstrip().startswith(("-", "{", "[")):
                return previous, what, "this key has no `:` (write `key: value`)"
    return line, what, hint


def _render_all(manifest_dir: str | Path, environment: str | None, variables: Mapping[str, str] | Iterable[str] | None,
                env_file_dir: str | Path | None, stack: str | None = None
                ) -> tuple[list[Rendered], list[Problem], int]:
    folder = Path(manifest_dir)
    if not folder.is_dir():
        return [], [Problem(display_path(folder), None, "manifests folder not found",
                            "create it or pass the right folder (e.g. --manifests manifests)")], 1
    files = manifest_files(folder)
    if not files:
        return [], [Problem(display_path(folder), None, "no manifest files (*.yaml, *.yaml.j2) in this folder",
                                    "add manifests or pass the right folder")], 1
    env_dir = env_file_dir if env_file_dir is not None else folder.resolve().parent
    undeclared = environment_problems(environment, env_dir, folder.resolve().parent)
    if undeclared:
        return [], undeclared, 1
    values = load_variables(env_dir, environment, variables, stack)
    renderer = Renderer(folder, values)
    rendered, problems, failed = [], [], 0
    for path in files:
        try:
            result, found = renderer.render(path)
        except (OSError, UnicodeDecodeError) as exc:
            result, found = None, [Problem(display_path(path), None, f"cannot read manifest: {exc}",
                                           "check the file is readable UTF-8 text")]
        problems += found
        if result is None:
            failed += 1
        else:
            rendered.append(result)
    return rendered, _merge_template_problems(problems), failed


_USED_BY = re.compile(r" \(in a template (?:included from|used by) ([^)]+)\)$")


def _merge_template_problems(problems: list[Problem]) -> list[Problem]:
    """One problem in a shared template, reached from several manifests, is reported once, naming them all."""
    merged: dict[tuple, list[str]] = {}
    order: list[tuple] = []
    for problem in problems:
        match = _USED_BY.search(problem.message)
        base = problem.message[:match.start()] if match else problem.message
        key = (problem.file, problem.line, base, problem.hint)
        if key not in merged:
            merged[key] = []
            order.append(key)
        if match:
            merged[key].append(match.group(1))
    out = []
    for key in order:
        file, line, base, hint = key
        users = merged[key]
        suffix = f" (in a template used by {', '.join(users)})" if users else ""
        if len(users) == 1:
            original = next(p for p in problems if p.file == file and p.line == line and p.message.startswith(base))
            out.append(original)
        else:
            out.append(Problem(file, line, base + suffix, hint))
    return out


def render_manifests(manifest_dir: str | Path, *, environment: str | None = None,
                     variables: Mapping[str, str] | Iterable[str] | None = None,
                     env_file_dir: str | Path | None = None, stack: str | None = None) -> dict[str, str]:
    """The rendered text of every manifest file by display path, in file order (for `invoke render`)."""
    rendered, problems, _ = _render_all(manifest_dir, environment, variables, env_file_dir, stack)
    if problems:
        raise ManifestError(problems)
    return {display_path(r.path): r.text for r in rendered}


def load_manifests(manifest_dir: str | Path, *, environment: str | None = None,
                   variables: Mapping[str, str] | Iterable[str] | None = None,
                   env_file_dir: str | Path | None = None, stack: str | None = None) -> list[Resource]:
    """Render, parse and validate every manifest; the declared Resources in file order, or one ManifestError.

    `variables` is the --var dict (or the raw "key=value" strings). Reference policy: an explicit depends_on must
    name a declared resource; references inferred from a spec (a documents/check index, an endpoint's model, a
    semantic_text inference_id) may name objects that already exist in the cluster, so they are resolved at plan time.
    `stack` is the stack name templates see as `stack` (default: ES_STACK_NAME, else "default").
    """
    from provisioning.validation import validate_documents  # late: validation imports the kind registry

    rendered, problems, failed = _render_all(manifest_dir, environment, variables, env_file_dir, stack)
    documents: list[Document] = []
    for item in rendered:
        docs, found = parse_yaml_documents(item.text, display_path(item.path), item.source_line)
        documents += docs
        problems += found
        failed += any(p.message.startswith("YAML") for p in found)  # the stream stopped: declarations may be missing
    resources, found = validate_documents(documents, complete=not failed)
    problems += found
    if Path(manifest_dir).is_dir():
        problems += _stray_problems(Path(manifest_dir), resources, complete=not failed)
    if problems:
        raise ManifestError(_ordered(problems))
    return resources


def _stray_problems(folder: Path, resources: list[Resource], *, complete: bool) -> list[Problem]:
    """Files in the manifests folder that would be silently ignored. A data file there is fine when a documents
    resource reads it (its `source`); while some manifest is broken, only manifest-like names are reported."""
    from provisioning.kinds.documents_data import is_url, resolve_source

    used = {Path(resolve_source(r)).resolve() for r in resources
            if r.kind == "documents" and isinstance(r.spec.get("source"), str) and not is_url(r.spec["source"])}
    problems = []
    for path, problem in stray_files(folder):
        if path.resolve() in used or not (complete or MANIFEST_LIKE in problem.message):
            continue
        problems.append(problem)
    return problems


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Deduplicated, by file then line (stable for problems without a line)."""
    unique = list(dict.fromkeys(problems))
    # a problem without a line ("... and 15 more problems in this file") comes after the ones it summarises
    return sorted(unique, key=lambda p: (p.file, p.line if p.line is not None else float("inf")))
