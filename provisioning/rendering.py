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
            name = _undefined_name(exc.message or "")
            message = f"undefined variable {name} ({exc.message})" if name else f"undefined: {exc.message}"
            return None, [self._problem(path, exc, message, _undefined_hint(name, self.variables))]
        except Exception as exc:  # a template expression failed (e.g. a filter on a wrong type): the user's input
            return None, [self._problem(path, exc, f"template error: {type(exc).__name__}: {exc}",
                                        "fix the template expression at this line")]
        return Rendered(path, text, line_map(source, text)), []

    def _problem(self, manifest: Path, exc: Exception, message: str, hint: str) -> Problem:
        """The innermost template location (an included template's own file and line), naming the manifest line
        that included it. Jinja rewrites tracebacks so that template frames carry the template file and line."""
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename and any(f.filename.startswith(s + os.sep) for s in self.search)]
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
