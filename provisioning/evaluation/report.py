"""Evaluation output: the text table (after apply and `invoke evaluate`), one JSON document, JUnit XML, Markdown and
a self-contained HTML page (no network: inline CSS and a few lines of inline script).

The first variant declared is the reference: deltas and per-query differences are every other variant minus it,
on the evaluation's first metric (the primary one, e.g. ndcg@10).
"""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET

from provisioning.evaluation.run import EvaluationResult, Gate

JSON_FORMAT = "es-stack-evaluation"


def verdict(result: EvaluationResult) -> str:
    if not result.ok:
        return "FAILED"
    if not result.enforced:
        return "reported (gates off)"
    return "passed"


def _ranks_text(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['doc']}({e['grade']})@{e['rank'] if e['rank'] is not None else '-'}" for e in entries)


def query_differences(result: EvaluationResult, variant: str) -> list[dict[str, Any]]:
    """Queries whose primary metric differs between the reference variant and `variant`, largest change first."""
    reference, metric = result.variants[0], result.metrics[0]
    out = []
    for q, text in result.queries.items():
        before, after = result.per_query[reference][q][metric], result.per_query[variant][q][metric]
        if abs(after - before) < 1e-9:
            continue
        out.append({"query": q, "text": text, "metric": metric, "before": before, "after": after,
                    "change": "better" if after > before else "worse",
                    "ranks_before": result.ranks[reference][q], "ranks_after": result.ranks[variant][q]})
    return sorted(out, key=lambda d: -abs(d["after"] - d["before"]))


def _gate_line(gate: Gate, enforced: bool = True) -> str:
    mark = "ok  " if gate.ok else ("FAIL" if enforced else "off ")
    return f"{mark} {gate.description} (got {gate.value:.4f}, needs {gate.required:.4f})"


def render_text(results: list[EvaluationResult]) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"evaluation/{r.name}: {verdict(r)} ({len(r.queries)} queries on {r.index}, "
                     f"computed with {r.method})")
        for note in r.notes:
            lines.append(f"  note: {note}")
        reference, others = r.variants[0], r.variants[1:]
        head = f"  {'metric':<14}" + "".join(f"{v:>12}" for v in r.variants) + \
            "".join(f"{'Δ ' + v:>14}" for v in others)
        lines.append(head)
        for m in r.metrics:
            row = f"  {m:<14}" + "".join(f"{r.scores[v][m]:>12.4f}" for v in r.variants)
            row += "".join(f"{r.scores[v][m] - r.scores[reference][m]:>+14.4f}" for v in others)
            lines.append(row)
        if r.gates:
            lines.append("  gates:" if r.enforced else f"  gates OFF, not enforced: {r.off_reason}")
            lines += [f"    {_gate_line(g, r.enforced)}" for g in r.gates]
        elif not r.enforced:
            lines.append(f"  gates OFF: {r.off_reason}")
        if r.baseline:
            lines.append(f"  baseline (tolerance {r.tolerance:g}):")
            lines += [f"    {_gate_line(g)}" for g in r.baseline]
        for v in others:
            diffs = query_differences(r, v)
            better = sum(d["change"] == "better" for d in diffs)
            lines.append(f"  per query, {r.metrics[0]} {reference} -> {v}: {better} better, {len(diffs) - better} "
                         f"worse, {len(r.queries) - len(diffs)} unchanged (relevant doc(grade)@rank)")
            for d in diffs:
                lines.append(f"    {d['change']:<6} {d['query']} {d['text']!r}: {d['before']:.4f} -> {d['after']:.4f}")
                lines.append(f"           {reference}: {_ranks_text(d['ranks_before']) or '-'}")
                lines.append(f"           {v}: {_ranks_text(d['ranks_after']) or '-'}")
    return "\n".join(lines)


def to_json(results: list[EvaluationResult]) -> str:
    doc = {"format": JSON_FORMAT, "format_version": 1, "ok": all(r.ok for r in results),
           "evaluations": [{**r.to_dict(), "differences": {v: query_differences(r, v) for v in r.variants[1:]}}
                           for r in results]}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def to_junit(results: list[EvaluationResult]) -> str:
    """One testsuite per evaluation; one testcase per gate (skipped when gates are off) and per baseline check."""
    suites = ET.Element("testsuites", name="es-stack relevance")
    for r in results:
        cases = [(g, "gate") for g in r.gates] + [(g, "baseline") for g in r.baseline]
        failures = sum(1 for g, what in cases if not g.ok and (what == "baseline" or r.enforced))
        skipped = 0 if r.enforced else len(r.gates)
        suite = ET.SubElement(suites, "testsuite", name=f"evaluation/{r.name}", tests=str(len(cases)),
                              failures=str(failures), errors="0", skipped=str(skipped))
        props = ET.SubElement(suite, "properties")
        for v in r.variants:
            for m in r.metrics:
                ET.SubElement(props, "property", name=f"{v}.{m}", value=f"{r.scores[v][m]:.6f}")
        for g, what in cases:
            case = ET.SubElement(suite, "testcase", classname=f"evaluation.{r.name}.{what}", name=g.description)
            if what == "gate" and not r.enforced:
                ET.SubElement(case, "skipped", message=f"gates off: {r.off_reason}")
            elif not g.ok:
                failure = ET.SubElement(case, "failure", message=f"got {g.value:.4f}, needs {g.required:.4f}")
                failure.text = f"{g.description}: got {g.value:.6f}, needs {g.required:.6f}"
    suites.set("tests", str(sum(int(s.get("tests")) for s in suites)))
    suites.set("failures", str(sum(int(s.get("failures")) for s in suites)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def to_markdown(results: list[EvaluationResult]) -> str:
    out = ["# Relevance evaluation", ""]
    for r in results:
        reference, others = r.variants[0], r.variants[1:]
        out += [f"## evaluation/{r.name}: {verdict(r)}", "",
                f"{len(r.queries)} queries on `{r.index}`, computed with `{r.method}`.", ""]
        if not r.enforced:
            out += [f"> Gates are off: {r.off_reason}", ""]
        out += ["### Metrics", "", "| metric | " + " | ".join(r.variants) + "".join(f" | Δ {v}" for v in others) + " |",
                "|---|" + "---:|" * (len(r.variants) + len(others))]
        for m in r.metrics:
            out.append(f"| {m} | " + " | ".join(f"{r.scores[v][m]:.4f}" for v in r.variants)
                       + "".join(f" | {r.scores[v][m] - r.scores[reference][m]:+.4f}" for v in others) + " |")
        out += ["", "### Gates", ""]
        if not r.gates and not r.baseline:
            out.append("No gates declared.")
        for g in r.gates:
            state = "pass" if g.ok else ("FAIL" if r.enforced else "off")
            out.append(f"- **{state}** {g.description} (got {g.value:.4f}, needs {g.required:.4f})")
        for g in r.baseline:
            out.append(f"- **{'pass' if g.ok else 'FAIL'}** {g.description} (got {g.value:.4f})")
        out += ["", "### Per-query differences", ""]
        for v in others:
            diffs = query_differences(r, v)
            if not diffs:
                out.append(f"No query changed its {r.metrics[0]} between {reference} and {v}.")
                continue
            out += [f"| query | text | {r.metrics[0]} {reference} | {r.metrics[0]} {v} | change | "
                    f"ranks in {reference} | ranks in {v} |", "|---|---|---:|---:|---|---|---|"]
            for d in diffs:
                out.append(f"| {d['query']} | {d['text']} | {d['before']:.4f} | {d['after']:.4f} | {d['change']} | "
                           f"{_ranks_text(d['ranks_before'])} | {_ranks_text(d['ranks_after'])} |")
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d1d1f;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #d0d0d7;padding:4px 8px;vertical-align:top;font-size:13px}th{background:#f2f2f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}.rank{display:inline-block;min-width:22px;
text-align:center;border-radius:4px;padding:0 4px;margin:1px;font-weight:600}.top{background:#c8f2d0}
.mid{background:#fbeec1}.miss{background:#f6c9c9}.better{color:#0a7a28;font-weight:600}
.worse{color:#b3261e;font-weight:600}.off{background:#fff4d6;border:1px solid #e8c66a;padding:6px 10px}
.pass{color:#0a7a28}.fail{color:#b3261e}li.off{color:#8a6d00}.doc{color:#555}
"""

# counts the better/worse rows in the browser: the test reads the result from the rendered DOM
_SCRIPT = """
for (const t of document.querySelectorAll('table.queries')) {
  const rows = t.querySelectorAll('tbody tr');
  const better = t.querySelectorAll('tbody tr[data-change="better"]').length;
  const worse = t.querySelectorAll('tbody tr[data-change="worse"]').length;
  const out = document.getElementById(t.dataset.summary);
  if (out) out.textContent = rows.length + ' queries: ' + better + ' better, ' + worse + ' worse';
}
"""


def _rank_cell(entries: list[dict[str, Any]], k: int) -> str:
    parts = []
    for e in entries:
        rank = e["rank"]
        cls = "miss" if rank is None else "top" if rank <= 3 else "mid" if rank <= k else "miss"
        parts.append(f"<span class='rank {cls}' title='grade {e['grade']}'>{rank if rank is not None else '–'}"
                     f"</span><span class='doc'>{html.escape(e['doc'])} (g{e['grade']})</span>")
    return "<br>".join(parts) or "<span class='doc'>no relevant document</span>"


def to_html(results: list[EvaluationResult]) -> str:
    body = ["<h1>Relevance evaluation</h1>"]
    for n, r in enumerate(results):
        reference, metric = r.variants[0], r.metrics[0]
        k = int(metric.split("@")[1])
        body.append(f"<h2 id='eval-{n}'>evaluation/{html.escape(r.name)}: {html.escape(verdict(r))}</h2>")
        body.append(f"<p>{len(r.queries)} queries on <code>{html.escape(r.index)}</code>, computed with "
                    f"<code>{html.escape(r.method)}</code>.</p>")
        if not r.enforced:
            body.append(f"<p class='off'>Gates are off: {html.escape(r.off_reason)}</p>")
        others = r.variants[1:]
        body.append("<table class='scores'><thead><tr><th>metric</th>" + "".join(
            f"<th>{html.escape(v)}</th>" for v in r.variants) + "".join(
            f"<th>Δ {html.escape(v)}</th>" for v in others) + "</tr></thead><tbody>")
        for m in r.metrics:
            body.append(f"<tr><td>{m}</td>" + "".join(f"<td class='num'>{r.scores[v][m]:.4f}</td>"
                                                       for v in r.variants) + "".join(
                f"<td class='num'>{r.scores[v][m] - r.scores[reference][m]:+.4f}</td>" for v in others) + "</tr>")
        body.append("</tbody></table><ul class='gates'>")
        for g, gate in [(g, True) for g in r.gates] + [(g, False) for g in r.baseline]:
            cls, label = ("pass", "pass") if g.ok else ("fail", "FAIL") if r.enforced or not gate else \
                ("off", "off, would fail")
            body.append(f"<li class='{cls}'>{label}: {html.escape(g.description)} "
                        f"(got {g.value:.4f}, needs {g.required:.4f})</li>")
        body.append(f"</ul><p id='summary-{n}' class='summary'></p>")
        body.append(f"<table class='queries' data-summary='summary-{n}'><thead><tr><th>query</th>" + "".join(
            f"<th>{html.escape(v)}<br><small>ranks of relevant docs · {metric}</small></th>" for v in r.variants)
            + "</tr></thead><tbody>")
        last = r.variants[-1]
        for q, text in r.queries.items():
            before, after = r.per_query[reference][q][metric], r.per_query[last][q][metric]
            change = "better" if after > before + 1e-9 else "worse" if after < before - 1e-9 else "same"
            cells = "".join(f"<td>{_rank_cell(r.ranks[v][q], k)}<div class='num'>{metric} "
                            f"{r.per_query[v][q][metric]:.4f}</div></td>" for v in r.variants)
            body.append(f"<tr data-query='{html.escape(q)}' data-change='{change}'><td><b>{html.escape(q)}</b><br>"
                        f"{html.escape(text)}<br><span class='{change}'>{change}</span></td>{cells}</tr>")
        body.append("</tbody></table>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>Relevance evaluation</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body)
            + f"\n<script>{_SCRIPT}</script></body></html>\n")
