"""Run a folder of Elasticsearch YAML REST tests against a URL, or against a fresh in-process sandbox.

    python -m conformance.runner [FOLDER] [--url URL] [-v] [-k NAME] [--include-alt]
    invoke conformance [-f FOLDER] [--url URL] [-v] [-n NAME]

Each file is parsed into `setup`, `teardown` and test sections. For every test section, as Elasticsearch's
Java runner does: the target is wiped, the stash and the response are cleared, the `skip`/`requires`
sections of setup/teardown (whole file) and of the test are evaluated, then setup, the test and teardown run.
One line is printed per file and a final `N passed, N failed, N skipped` line; the exit code is 1 when any
test failed. The format: rest-api-spec/src/yamlRestTest/resources/rest-api-spec/test/README.asciidoc.

Skips: a test is skipped by its own `skip`/`requires` sections, or by conformance/skips.yaml (the one
list of deliberately out-of-scope tests, each with its reason). Against a sandbox, a test whose `requires`
names a cluster feature or capability the sandbox does not advertise FAILS unless skips.yaml lists it, so an
unclaimed feature is a visible conformance gap rather than a silent skip. Against --url, the cluster's own
answers decide, as in Elasticsearch's runner.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from elasticsearch import Elasticsearch

from conformance import skips as skiplist
from conformance import yamlops as ops
from conformance.calls import Exchange, call
from conformance.conditions import Server, check_prerequisite
from conformance.wipe import is_sandbox, wipe
from conformance.yamlops import Context, TestFailure, TestSkipped

ALT_VERSIONS = "_alt-versions"
# The saved suite lives beside the checkout (../shared), not in the project: see es-yaml-tests/README.md.
DEFAULT_SUITE = Path(__file__).resolve().parents[2] / "shared" / "es-yaml-tests"
# Newer tests kept beside it (APIs the sandbox gained later); skips.yaml `included_next` names the folders run.
DEFAULT_NEXT = DEFAULT_SUITE.with_name("es-yaml-tests-next")

_ASSERTIONS: dict[str, Callable[[Context, Any], None]] = {
    "match": ops.assert_match,
    "is_true": ops.assert_is_true,
    "is_false": ops.assert_is_false,
    "exists": ops.assert_exists,
    "length": ops.assert_length,
    "contains": ops.assert_contains,
    "close_to": ops.assert_close_to,
    "set": ops.do_set,
    "transform_and_set": ops.do_transform_and_set,
    "gt": lambda ctx, spec: ops.assert_compare(ctx, "gt", spec),
    "gte": lambda ctx, spec: ops.assert_compare(ctx, "gte", spec),
    "lt": lambda ctx, spec: ops.assert_compare(ctx, "lt", spec),
    "lte": lambda ctx, spec: ops.assert_compare(ctx, "lte", spec),
}


@dataclass
class TestResult:
    name: str
    outcome: str  # "passed" | "failed" | "skipped"
    reason: str = ""
    trace: list[Exchange] = field(default_factory=list)

    __test__ = False


@dataclass
class FileResult:
    path: str
    tests: list[TestResult] = field(default_factory=list)
    error: str = ""  # the file could not be parsed

    def count(self, outcome: str) -> int:
        return sum(1 for t in self.tests if t.outcome == outcome)


@dataclass
class Summary:
    files: list[FileResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(f.count(outcome) for f in self.files) + (
            sum(1 for f in self.files if f.error) if outcome == "failed" else 0)

    @property
    def line(self) -> str:
        return f"{self.count('passed')} passed, {self.count('failed')} failed, {self.count('skipped')} skipped"

    def failure_lines(self) -> list[str]:
        lines = []
        for result in self.files:
            if result.error:
                lines.append(f"FAIL {result.path}: {result.error}")
            lines += [f"FAIL {result.path}: {t.name}: {t.reason}" for t in result.tests if t.outcome == "failed"]
        return lines


# ---- parsing -----------------------------------------------------------------------------------------------
@dataclass
class Suite:
    setup: list
    teardown: list
    tests: list[tuple[str, list]]
    prerequisites: list = field(default_factory=list)  # file-level `requires`/`skip` documents, as steps


def _is_condition(doc: dict) -> bool:
    """A document holding only `requires`/`skip` sections (mappings, where a test holds a list of steps) is a
    condition on the whole file, not a test (ES ClientYamlTestSuite: the file's prerequisites)."""
    return bool(doc) and set(doc) <= {"requires", "skip"} and all(isinstance(v, dict) for v in doc.values())


def parse(path: Path) -> Suite:
    setup: list = []
    teardown: list = []
    tests: list[tuple[str, list]] = []
    prerequisites: list = []
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if not doc:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"a section must be a mapping, got {type(doc).__name__}")
        if _is_condition(doc):
            if setup or teardown or tests:
                raise ValueError("a file-level requires/skip document must come before setup and the tests")
            prerequisites += [{key: value} for key, value in doc.items()]
            continue
        for name, steps in doc.items():
            if name == "setup":
                setup = steps or []
            elif name == "teardown":
                teardown = steps or []
            else:
                tests.append((str(name), steps or []))
    return Suite(setup, teardown, tests, prerequisites)


def discover(folder: Path, skips: skiplist.SkipList, include_alt: bool = False) -> list[Path]:
    """The YAML files under folder, sorted; _alt-versions/ copies only when asked for or listed in skips.yaml."""
    if folder.is_file():
        return [folder]
    inside_alt = ALT_VERSIONS in folder.resolve().parts
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        rel = path.relative_to(folder)
        if (ALT_VERSIONS in rel.parts and not inside_alt and not include_alt
                and not skips.includes_alt(path.resolve().as_posix())):
            continue
        found.append(path)
    return found


def _describe(error: Exception) -> str:
    return str(error) if isinstance(error, (TestFailure, TestSkipped)) else f"{type(error).__name__}: {error}"


# ---- execution ---------------------------------------------------------------------------------------------
def _leading_prerequisites(steps: list) -> tuple[list, list]:
    """Split the `skip`/`requires` steps at the top of a section from the rest."""
    index = 0
    while index < len(steps) and isinstance(steps[index], dict) and set(steps[index]) & {"skip", "requires"}:
        index += 1
    return steps[:index], steps[index:]


class Runner:
    def __init__(self, client: Elasticsearch, *, reset: Callable[[], None], skips: skiplist.SkipList | None = None,
                 name_filter: str | None = None, strict: bool = False):
        self.client = client
        self.reset = reset  # wipes the target before each test section
        # strict (the sandbox is the target): a test skipped only because the target does not advertise a
        # cluster feature or capability fails, unless skips.yaml lists it; otherwise an unclaimed feature
        # would make its tests vanish silently instead of counting as a conformance gap.
        self.strict = strict
        self.server = Server(client)
        self.skips = skips or skiplist.load()
        self.name_filter = name_filter

    def run_steps(self, ctx: Context, steps: Iterable, trace: list[Exchange], section: str) -> None:
        for number, step in enumerate(steps, 1):
            if not isinstance(step, dict) or len(step) != 1:
                raise TestFailure(f"{section} step {number}: a step must be a single-key mapping: {step!r}")
            if check_prerequisite(self.server, step):
                continue
            (kind, spec), = step.items()
            try:
                if kind == "do":
                    call(self.client, ctx, spec, trace)
                elif kind in _ASSERTIONS:
                    _ASSERTIONS[kind](ctx, spec)
                else:
                    raise TestFailure(f"unknown step [{kind}]")
            except TestFailure as failure:
                raise TestFailure(f"{section} step {number} ({kind}): {failure}") from failure

    def run_test(self, suite: Suite, name: str, steps: list) -> TestResult:
        trace: list[Exchange] = []
        ctx = Context()
        try:
            for section in (suite.prerequisites, suite.setup, suite.teardown, steps):
                for step in _leading_prerequisites(section)[0]:
                    check_prerequisite(self.server, step)
            self.reset()
        except TestSkipped as skipped:
            return self._skipped(name, skipped, trace)
        except Exception as error:  # the target cannot say what it supports, or cannot be wiped
            return TestResult(name, "failed", f"before the test: {_describe(error)}", trace)
        outcome: TestResult | None = None
        try:
            self.run_steps(ctx, _leading_prerequisites(suite.setup)[1], trace, "setup")
            self.run_steps(ctx, _leading_prerequisites(steps)[1], trace, "test")
        except TestSkipped as skipped:  # a skip/requires section further down the test
            outcome = self._skipped(name, skipped, trace)
        except Exception as error:  # an assertion, or a broken connection / unexpected client error
            outcome = TestResult(name, "failed", _describe(error), trace)
        try:  # ES runs teardown whatever happened
            self.run_steps(ctx, _leading_prerequisites(suite.teardown)[1], trace, "teardown")
        except Exception as error:
            if outcome is None or outcome.outcome != "failed":
                outcome = TestResult(name, "failed", _describe(error), trace)
        return outcome or TestResult(name, "passed", "", trace)

    def _skipped(self, name: str, skipped: TestSkipped, trace: list[Exchange]) -> TestResult:
        if skipped.gap and self.strict:
            return TestResult(name, "failed", f"the sandbox does not advertise {skipped.gap}: implement and "
                                              "advertise it, or list this test in skips.yaml with a reason", trace)
        return TestResult(name, "skipped", skipped.reason, trace)

    def run_file(self, path: Path, display: str) -> FileResult:
        result = FileResult(display)
        try:
            suite = parse(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            result.error = f"cannot parse: {error}"
            return result
        posix = path.resolve().as_posix()
        for name, steps in suite.tests:
            if self.name_filter and self.name_filter.lower() not in name.lower():
                continue
            reason = self.skips.reason(posix, name)
            if reason:
                result.tests.append(TestResult(name, "skipped", f"skip list: {reason}"))
                continue
            result.tests.append(self.run_test(suite, name, steps))
        return result


# ---- reporting ---------------------------------------------------------------------------------------------
def report_file(result: FileResult, verbose: bool, out: Any) -> None:
    passed, failed, skipped = (result.count(o) for o in ("passed", "failed", "skipped"))
    if result.error:
        print(f"FAIL {result.path}: {result.error}", file=out)
    elif failed:
        for test in result.tests:
            if test.outcome == "failed":
                print(f"FAIL {result.path}: {test.name}: {test.reason}", file=out)
                if verbose:
                    for exchange in test.trace[-3:]:
                        print(exchange.describe(), file=out)
        print(f"     {result.path}: {passed} passed, {failed} failed, {skipped} skipped", file=out)
    elif passed == 0 and skipped:
        print(f"SKIP {result.path} ({skipped} tests): {result.tests[0].reason}", file=out)
    else:
        extra = f", {skipped} skipped" if skipped else ""
        print(f"PASS {result.path} ({passed} tests{extra})", file=out)
    if verbose:
        for test in result.tests:
            if test.outcome == "skipped":
                print(f"     skipped {test.name!r}: {test.reason}", file=out)


def _display(relpath: str) -> str:
    # Elasticsearch's test folders all end in this; dropping it keeps the lines short.
    return relpath.replace("src/yamlRestTest/resources/rest-api-spec/test/", "")


def run_folder(folder: Path, client: Elasticsearch, *, sandbox: bool, verbose: bool = False,
               name_filter: str | None = None, include_alt: bool = False, out: Any = None,
               reset: Callable[[], None] | None = None, skips: skiplist.SkipList | None = None) -> Summary:
    out = out or sys.stdout
    runner = Runner(client, reset=reset or (lambda: wipe(client, sandbox)), skips=skips, name_filter=name_filter,
                    strict=sandbox)
    summary = Summary()
    base = folder if folder.is_dir() else folder.parent
    for path in discover(folder, runner.skips, include_alt):
        result = runner.run_file(path, _display(path.relative_to(base).as_posix()))
        if result.tests or result.error:
            summary.files.append(result)
            report_file(result, verbose, out)
            out.flush()
    print(summary.line, file=out)
    return summary


def make_client(url: str, api_key: str | None) -> Elasticsearch:
    # No retries: a test must see exactly the answer to its one request, as the Java runner does.
    # node_class: REST compatibility negotiated with the target's major (8.x or 9.x), as the engine does.
    from provisioning.compat import node_class

    return Elasticsearch(url, api_key=api_key, request_timeout=120, max_retries=0, retry_on_timeout=False,
                         retry_on_status=(), node_class=node_class())


def _redact(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def run(folder: str | Path, url: str | None = None, *, verbose: bool = False, name_filter: str | None = None,
        include_alt: bool = False, api_key: str | None = None, out: Any = None,
        next_suite: str | Path | None = None) -> Summary:
    """Run the folder against url, or against a fresh in-process sandbox when url is None; then the folders of
    `next_suite` (es-yaml-tests-next) that skips.yaml's `included_next` lists."""
    out = out or sys.stdout
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"no such folder: {folder}")
    sandbox_server = None
    if url is None:
        from sandbox.server import Sandbox  # lazy: a run against a real cluster needs no sandbox

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
        sandbox_server = Sandbox().start()
        url = sandbox_server.url
    client = make_client(url, api_key)
    try:
        sandbox = is_sandbox(client)
        target = "a fresh sandbox" if sandbox_server else _redact(url) + (" (sandbox)" if sandbox else "")
        print(f"conformance: {folder} against {target}", file=out)
        summary = run_folder(folder, client, sandbox=sandbox, verbose=verbose, name_filter=name_filter,
                             include_alt=include_alt, out=out)
        if next_suite is not None and Path(next_suite).is_dir():
            for relative in skiplist.load().included_next:
                print(f"conformance: {Path(next_suite) / relative}", file=out)
                more = run_folder(Path(next_suite) / relative, client, sandbox=sandbox, verbose=verbose,
                                  name_filter=name_filter, include_alt=include_alt, out=out)
                summary.files += more.files
            print(f"total: {summary.line}", file=out)
        return summary
    finally:
        client.close()
        if sandbox_server is not None:
            sandbox_server.stop()


def execute(folder: str | Path | None = None, url: str | None = None, *, verbose: bool = False,
            name_filter: str | None = None, include_alt: bool = False, es_version: str | None = None) -> int:
    """Run and return the exit code: 0 all passed, 1 some failed, 2 nothing to run. es_version 8.x: the 8.x
    suite of conformance/es8.yaml against the sandbox running as that version (or --url)."""
    if es_version and es_version.startswith("8."):
        from conformance import es8

        summary = es8.run(es_version, url, verbose=verbose, name_filter=name_filter)
        return 1 if summary.count("failed") else (0 if summary.files else 2)
    try:
        summary = run(folder or DEFAULT_SUITE, url, verbose=verbose, name_filter=name_filter,
                      include_alt=include_alt, api_key=os.environ.get("ES_API_KEY"),
                      next_suite=None if folder else DEFAULT_NEXT)
    except FileNotFoundError as error:
        print(f"conformance: {error}", file=sys.stderr)
        return 2
    return 1 if summary.count("failed") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.runner", description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", help=f"a folder of YAML REST tests, or one file (default {DEFAULT_SUITE})")
    parser.add_argument("--url", help="a cluster to test; it is WIPED between tests (default: a fresh sandbox); "
                                      "credentials in the URL or ES_API_KEY")
    parser.add_argument("-v", "--verbose", action="store_true", help="show requests/responses of failures, skips")
    parser.add_argument("-k", dest="name_filter", help="only tests whose name contains this text")
    parser.add_argument("--include-alt", action="store_true", help="also run every file under _alt-versions/")
    args = parser.parse_args(argv)
    return execute(args.folder, args.url, verbose=args.verbose, name_filter=args.name_filter,
                   include_alt=args.include_alt)


if __name__ == "__main__":
    sys.exit(main())
