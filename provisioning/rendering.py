"""Jinja2 rendering of manifest files (StrictUndefined, deterministic), with errors at the user's file and line,
and the map from rendered lines back to source lines so that YAML and schema errors point into the manifest."""

from __future__ import annotations

import difflib
import os
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import jinja2

from provisioning.errors import Problem
from provisioning.variables import Variables

MANIFEST_SUFFIXES = (".yaml", ".yml", ".yaml.j2", ".yml.j2")


def display_path(path: str | Path) -> str:
    """A path as users should read it: relative to the current directory when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return os.path.normpath(path)


def manifest_files(manifest_dir: str | Path) -> list[Path]:
    """manifests/*.yaml and *.yaml.j2 (and .yml), sorted by name; subfolders are not read."""
    folder = Path(manifest_dir)
    return sorted((p for p in folder.iterdir() if p.is_file() and p.name.endswith(MANIFEST_SUFFIXES)),
                  key=lambda p: p.name)


# files a manifests folder may hold beside manifests (never read): documentation (*.md, *.txt, *.rst, README) and
# hidden files;
# data files live in subfolders (the example stack's manifests/data/), which are not scanned
IGNORED_NAMES = re.compile(r"^(\..*|README|LICENSE|.*\.(md|txt|rst))$", re.IGNORECASE)


MANIFEST_LIKE = "a manifest-like name"


def stray_files(manifest_dir: str | Path) -> list[tuple[Path, Problem]]:
    """Files directly in the manifests folder that would be silently ignored because of their name."""
    folder = Path(manifest_dir)
    problems = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.name.endswith(MANIFEST_SUFFIXES) or IGNORED_NAMES.match(path.name):
            continue
        lower = path.name.lower()
        names = ", ".join("*" + s for s in MANIFEST_SUFFIXES)
        if lower.endswith(MANIFEST_SUFFIXES):
            message, hint = MANIFEST_LIKE, f"rename it with a lower-case extension ({names})"
        elif re.search(r"\.(j2|jinja2?|tmpl|tpl)$", lower) or "yaml" in lower or "yml" in lower:
            message, hint = MANIFEST_LIKE, f"manifests must be named {names}"
        else:
            message = "not a manifest, and no documents resource reads it"
            hint = (f"name it {names} if it is a manifest; a data file belongs in a subfolder such as "
                    "manifests/data/ (a documents `source` is relative to its manifest), or out of manifests/")
        problems.append((path, Problem(display_path(path), None, f"{path.name} would be ignored: {message}", hint)))
    return problems


@dataclass
class Rendered:
    path: Path  # the manifest file
    text: str  # rendered YAML
    line_map: list[int]  # rendered line index (0-based) -> source line (1-based)

    def source_line(self, rendered_line: int) -> int:
        """The manifest line (1-based) a rendered line (1-based) came from."""
        if not self.line_map:
            return rendered_line
        return self.line_map[min(max(rendered_line - 1, 0), len(self.line_map) - 1)]


def line_map(source: str, rendered: str) -> list[int]:
    """Align rendered lines with source lines. Exact for lines Jinja left alone or substituted in place; lines an
    include or macro expanded map to the source line that produced them (difflib opcodes: a block replaced by a
    block of another size maps each rendered line to the corresponding source line, clamped to the block)."""
    # lines holding only a block tag (if/for/set/import/macro ...) render to nothing (trim_blocks, lstrip_blocks):
    # leave them out of the alignment, keeping the original numbers of the others
    kept = [(n, line) for n, line in enumerate(source.splitlines(), start=1) if not _SILENT_LINE.match(line)]
    numbers, src = [n for n, _ in kept], [line for _, line in kept]
    out = rendered.splitlines()
    result = [1] * len(out)
    if not numbers:
        return result
    if src == out:  # nothing templated (a plain YAML file): every line is itself, no alignment needed
        return numbers
    keys = [_yaml_key(line) for line in src]
    matcher = difflib.SequenceMatcher(a=src, b=out, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        for j in range(b0, b1):
            if tag == "equal" or (tag == "replace" and a1 - a0 == b1 - b0):
                result[j] = numbers[a0 + (j - b0)]
                continue
            # a block of another size (a loop, an include, a multi-line value): the nearest source line at or
            # before this point with the same YAML key (a loop body line), else the line that produced the block
            guess = min(a0 + (j - b0), max(a1 - 1, a0)) if tag == "replace" else max(a0 - 1, 0)
            key = _yaml_key(out[j])
            same = [i for i in range(min(guess, len(src) - 1), max(guess - 200, -1), -1) if key and keys[i] == key]
            result[j] = numbers[same[0] if same else guess]
    return result


def _yaml_key(line: str) -> str | None:
    """`  - name: x` -> "- name"; lines without a plain `key:` give None."""
    match = re.match(r"^(\s*(?:- )?)([A-Za-z0-9_.\-]+):(\s|$)", line)
    return f"{match.group(1)}{match.group(2)}" if match else None


_SILENT_LINE = re.compile(r"^\s*\{%-?\s*(if|elif|else|endif|for|endfor|set|endset|import|from|macro|endmacro|with|"
                          r"endwith|filter|endfilter|call|endcall|block|endblock|raw|endraw)\b.*%\}\s*$")


_UNDEFINED = (re.compile(r"'([^']+)' is undefined"), re.compile(r"has no attribute '([^']+)'"))


def _undefined_name(message: str) -> str | None:
    for pattern in _UNDEFINED:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


def _undefined_hint(name: str | None, variables: Variables) -> str:
    if not name:
        return "check the variable names used in the template"
    files = ".env" + (f" or .env.{variables.environment}" if variables.environment != "default" else "")
    return f"define {name} in {files} or the environment, or pass --var {name}=..."


_IMPORT = re.compile(r"""\{%-?\s*(?:import\s+["']([^"']+)["']\s+as\s+(\w+)|from\s+["']([^"']+)["']\s+import)"""
                     r"""([^%]*?)(\bwith\s+context)?\s*-?%\}""")


def _imports(source: str) -> dict[str, tuple[str, bool]]:
    """alias -> (template name, imported with context) for every `{% import "x" as alias [with context] %}`."""
    return {m.group(2): (m.group(1), bool(m.group(5))) for m in _IMPORT.finditer(source) if m.group(1)}


class Renderer:
    """One Jinja environment over the manifests folder and the project's templates/ (its sibling folder)."""

    def __init__(self, manifest_dir: str | Path, variables: Variables, templates_dir: str | Path | None = None):
        self.manifest_dir = Path(manifest_dir).resolve()
        self.templates_dir = Path(templates_dir).resolve() if templates_dir else self.manifest_dir.parent / "templates"
        self.variables = variables
        search = [str(self.manifest_dir)] + ([str(self.templates_dir)] if self.templates_dir.is_dir() else [])
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,  # block tags on their own line leave no blank line in the YAML
            lstrip_blocks=True,
            autoescape=False,
        )
        self.search = search

    def render(self, path: Path) -> tuple[Rendered | None, list[Problem]]:
        path = path.resolve()
        source = path.read_text(encoding="utf-8")
        try:
            template = self.env.get_template(path.relative_to(self.manifest_dir).as_posix())
            text = template.render(self.variables.context())
        except jinja2.TemplateSyntaxError as exc:
            return None, [self._problem(path, exc, f"template syntax error: {exc.message}",
                                        "fix the Jinja syntax ({{ ... }}, {% ... %}) at this line")]
        except jinja2.TemplateNotFound as exc:
            return None, [self._problem(path, exc, f"template {exc.name!r} not found",
                                        f"templates are looked up in {', '.join(map(display_path, self.search))}")]
        except jinja2.UndefinedError as exc:
            return None, [self._undefined(path, exc)]
        except Exception as exc:  # a template expression failed (e.g. a filter on a wrong type): the user's input
            return None, [self._problem(path, exc, f"template error: {type(exc).__name__}: {exc}",
                                        "fix the template expression at this line")]
        return Rendered(path, text, line_map(source, text)), []

    def _frames(self, exc: Exception) -> list[tuple[str, int]]:
        return [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)
                if f.filename and any(f.filename.startswith(s + os.sep) for s in self.search)]

    def _undefined(self, manifest: Path, exc: jinja2.UndefinedError) -> Problem:
        """An undefined name, told apart: a missing attribute or macro of an imported template (name the template,
        what it lacks and what it has), a template imported without context reading the context, a variable."""
        text = exc.message or ""
        name = _undefined_name(text)
        frames = self._frames(exc)
        file, line = frames[-1] if frames else (str(manifest), None)
        source = Path(file).read_text(encoding="utf-8") if Path(file).is_file() else ""
        code = source.splitlines()[line - 1] if line and line <= len(source.splitlines()) else ""
        if "TemplateModule" in text and name:
            # `alias.name` where alias is an imported template: the template lacks `name`
            alias = next((a for a in re.findall(r"(\w+)\s*\.\s*" + re.escape(name) + r"\b", code)), None)
            template, with_context = _imports(source).get(alias, (None, False)) if alias else (None, False)
            what = f"template {template!r}" if template else "the imported template"
            has = self._exports(template, with_context)
            return self._problem(manifest, exc, f"{what} (imported as {alias or '?'}) has no attribute or macro "
                                 f"{name!r}", f"it defines: {', '.join(has) if has else 'nothing exported'}; "
                                 "fix the name, or add it to the template (a top-level {% set %} or {% macro %})")
        context = self.variables.context()
        if name in ("env", "var", "environment") or (name in context and Path(file).resolve() != manifest):
            # the mistake is the import line (in the manifest, or the template that imported this one)
            here = Path(file).resolve()
            importer, at = next(((f, n) for f, n in reversed(frames[:-1]) if Path(f).resolve() != here),
                                (str(manifest), None))
            text_of = Path(importer).read_text(encoding="utf-8") if Path(importer).is_file() else ""
            alias = next((a for a, (t, ctx) in _imports(text_of).items()
                          if not ctx and Path(t).name == Path(file).name), "s")
            return Problem(display_path(importer), at,
                           f"template {Path(file).name!r} is imported without context, so it cannot see {name} "
                           f"(used at {display_path(file)}:{line})",
                           f"import it with context: {{% import \"{Path(file).name}\" as {alias} with context %}}")
        expression = re.search(r"([\w.]*\b" + re.escape(name) + r")\b", code) if name else None
        if name and "has no attribute" in text and expression:
            message = f"undefined variable {name} ({expression.group(1)}: {text})"
        else:
            message = f"undefined variable {name} ({text})" if name else f"undefined: {text}"
        return self._problem(manifest, exc, message, _undefined_hint(name, self.variables))

    def _exports(self, template: str | None, with_context: bool) -> list[str]:
        """The top-level names (set/macro) an imported template exports, found without rendering it again."""
        if not template:
            return []
        try:
            source = self.env.loader.get_source(self.env, template)[0]
        except Exception:  # noqa: BLE001 - only a hint: a template that cannot be read has nothing to list
            return []
        names = re.findall(r"\{%-?\s*(?:set\s+(\w+)\s*=|macro\s+(\w+)\s*\()", source)
        return sorted({a or b for a, b in names if not (a or b).startswith("_")})

    def _problem(self, manifest: Path, exc: Exception, message: str, hint: str) -> Problem:
        """The innermost template location (an included template's own file and line), naming the manifest line
        that included it. Jinja rewrites tracebacks so that template frames carry the template file and line."""
        frames = self._frames(exc)
        if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
            frames.append((exc.filename, exc.lineno))
        manifest_frames = [fr for fr in frames if Path(fr[0]).resolve() == manifest]
        if not frames:
            return Problem(display_path(manifest), None, message, hint)
        file, line = frames[-1]
        if Path(file).resolve() != manifest and manifest_frames:
            message += f" (in a template included from {display_path(manifest)}:{manifest_frames[-1][1]})"
        elif Path(file).resolve() != manifest:
            message += f" (in a template used by {display_path(manifest)})"
        return Problem(display_path(file), line, message, hint)
