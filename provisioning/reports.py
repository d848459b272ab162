"""Report files for pipelines: check results as JUnit XML, a plan (and check results) as Markdown for a pull-request
comment or $GITHUB_STEP_SUMMARY (Atlantis/tfcmt style: summary counts, destructive changes first, collapsible
details). Pure functions of the plan and results; the CLI writes them through the redactor."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

from provisioning.model import HAZARD_SYMBOLS
from provisioning.report import SYMBOLS, render_plan, summary_line


def checks_to_junit(results: list[Any], suite: str = "es-stack checks") -> str:
    """One <testsuite> with one <testcase> per check; a failed expectation is a <failure>."""
    failures = sum(not r.ok for r in results)
    root = ET.Element("testsuites", name="es-stack", tests=str(len(results)), failures=str(failures), errors="0")
    suite_el = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures),
                             errors="0", skipped="0")
    for r in results:
        case = ET.SubElement(suite_el, "testcase", name=r.name, classname=f"check.{r.index}")
        details = "\n".join(f"{'ok  ' if e.ok else 'FAIL'} {e.description} ({e.detail})" for e in r.expectations)
        if not r.ok:
            failed = [e.description for e in r.expectations if not e.ok]
            failure = ET.SubElement(case, "failure", message="; ".join(failed) or "check failed", type="expectation")
            failure.text = details
        titles = [str((h.get("_source") or {}).get("title", h.get("_id"))) for h in r.hits]
        ET.SubElement(case, "system-out").text = f"{r.total} hits\n{details}\n" + "\n".join(titles)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _diff_lines(text: str) -> list[str]:
    """The text plan with each line's + / - moved to the first column, where a ```diff block colours it."""
    out = []
    for line in text.rstrip().splitlines():
        match = re.match(r"^(\s*)([+-])(\s.*)$", line)
        out.append(f"{match.group(2)}{match.group(1)}{match.group(3)}" if match else line)
    return out


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(plan: Any = None, checks: list[Any] | None = None, *, command: str = "plan",
                applied: list[tuple[str, str, float]] | None = None) -> str:
    lines: list[str] = []
    stack = getattr(plan, "stack", None)
    heading = f"## es-stack {command}" + (f": stack `{stack}`" if stack else "")
    lines.append(heading)
    lines.append("")
    if plan is not None:
        changes = [c for c in plan.changes if c.action != "noop"]
        lines.append(f"**{summary_line(plan)}**" if changes else "**No changes.** The cluster matches the manifests.")
        lines.append("")
        if plan.hazards:
            lines.append("### :warning: Destructive changes")
            lines.append("")
            for change, hazard in plan.hazards:
                lines.append(f"- `{HAZARD_SYMBOLS[hazard.kind]}` **{change.key}**: {hazard.message}")
            lines.append("")
        if changes:
            destructive = {c.key for c, _ in plan.hazards}
            ordered = sorted(changes, key=lambda c: (c.key not in destructive, c.action not in ("delete", "replace")))
            lines += ["### Changes", "", "| | resource | action | reason | location |", "|---|---|---|---|---|"]
            for c in ordered:
                location = str(c.resource.source) if c.resource is not None else "no longer declared"
                lines.append(f"| `{SYMBOLS[c.action]}` | `{c.key}` | {c.action} | {_cell(c.reason or '')} | "
                             f"{_cell(location)} |")
            lines.append("")
            lines += ["<details><summary>Plan details</summary>", "", "```diff",
                      *_diff_lines(render_plan(plan, color=False)), "```", "", "</details>", ""]
    if applied:
        lines += ["### Applied", "", "| resource | action | time |", "|---|---|---|"]
        lines += [f"| `{key}` | {action} | {seconds:.1f}s |" for key, action, seconds in applied]
        lines.append("")
    if checks is not None:
        failed = sum(not r.ok for r in checks)
        lines += ["### Checks", "", f"**{len(checks) - failed} passed, {failed} failed**", ""]
        if checks:
            lines += ["| check | result | hits |", "|---|---|---|"]
            lines += [f"| `{r.name}` | {'passed' if r.ok else '**FAILED**'} | {r.total} |" for r in checks]
            lines.append("")
            lines += ["<details><summary>Check details</summary>", ""]
            for r in checks:
                lines.append(f"- **{r.name}** on `{r.index}`")
                lines += [f"  - {'ok' if e.ok else 'FAIL'}: {_cell(e.description)} ({_cell(e.detail)})"
                          for e in r.expectations]
            lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"

