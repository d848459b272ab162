"""The command line: Invoke tasks (the `invoke ...` of this repository's tasks.py, and the `es-stack` console command,
the same tasks through Invoke's Program) and their output handling.

Every engine task: parse options -> one engine call -> print -> exit code. In ONE place (`_engine_task`):
- stdout and stderr are wrapped so that everything printed passes the redactor (provisioning/output.py);
- engine errors become `Exit(message, code)`: one or two lines naming the cause and what to do, never a traceback
  (`--debug` shows it); connection, TLS, authentication, authorisation and not-Elasticsearch failures are explained;
- Ctrl-C (and SIGTERM) says what finished, what was in flight and that a re-run converges.
stdout carries only the requested format: with --json exactly one JSON document; human lines go to stderr.
Paths (.env files, .cache/, the sandbox state) are relative to the working directory: a team's repository holds
only its manifests, templates and .env.example.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json as jsonlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, Program, Task
from invoke import task as _invoke_task

from provisioning.output import REDACTOR, RedactingStream, register_environment_secrets, use_color, write_file

SHORT_FLAGS = {"verbose": "v", "quiet": "q"}  # -v is --verbose, as everywhere else (not --var)
NO_SHORT_FLAG = {"var", "no_color", "debug"}


class EsStackTask(Task):
    """Short flags: -v --verbose and -q --quiet; none for --var, --no-color, --debug; the rest chosen by Invoke,
    never a `-` (Invoke would give `--no-color` the short flag `-`)."""

    def arg_opts(self, name, default, taken_names):
        reserved = set(SHORT_FLAGS.values()) | {"-"}
        opts = super().arg_opts(name, default, set(taken_names) | reserved)
        long = opts["names"][0]
        if name in SHORT_FLAGS:
            opts["names"] = [long, SHORT_FLAGS[name]]
        elif name in NO_SHORT_FLAG:
            opts["names"] = [long]
        return opts


def task(*args, **kwargs):
    return _invoke_task(*args, klass=EsStackTask, **kwargs)


def project_dir() -> Path:
    return Path.cwd()


def sandbox_state() -> Path:
    return Path(os.environ.get("ES_STACK_SANDBOX_STATE") or project_dir() / ".cache" / "sandbox-state.json")


def sandbox_model_dir() -> Path:
    return project_dir() / ".cache" / "sandbox-model"


# ---- the local sandbox on its own, and the conformance runner ------------------------------------------------------
@task(help={
    "port": "port to listen on (default 9200)",
    "state_file": "keep the sandbox's state in this JSON file so it survives a restart",
    "version": "Elasticsearch version reported by GET / (default 9.1.0)",
    "es_version": "the same as --version: 8.19.x or 9.x (8.19 answers with 8.x's REST compatibility rules, APIs "
                  "and messages where they differ: sandbox/versions.py)",
    "api_key": "require authentication: this bootstrap key (repeatable) acts as the superuser and can create "
               "restricted keys (POST /_security/api_key); without it the sandbox is open",
}, iterable=["api_key"])
def sandbox(c, port=9200, state_file=None, version=None, api_key=None, es_version=None):
    """Run the local Elasticsearch stand-in (9.x, or 8.19 with --es-version) on 127.0.0.1."""
    from sandbox.server import main

    version = version or es_version
    argv = ["--port", str(port)] + (["--state-file", state_file] if state_file else [])
    argv += [arg for key in api_key or [] for arg in ("--api-key", key)]
    main(argv + (["--version", version] if version else []))


# FOLDER is a flag (`-f`): Invoke's positional arguments are always required, and the default suite must run
# with a bare `invoke conformance`.
@task(help={
    "folder": "a folder of Elasticsearch YAML REST tests, or one file (default ../shared/es-yaml-tests)",
    "url": "run against this cluster instead of a fresh sandbox; it is WIPED between tests",
    "verbose": "show the requests and responses of failures, and every skip with its reason",
    "name": "only the tests whose name contains this text",
    "es_version": "8.19.x: run the 8.x suite (conformance/es8.yaml) against a sandbox running as that version",
})
def conformance(c, folder=None, url=None, verbose=False, name=None, es_version=None):
    """Run Elasticsearch's YAML REST tests against a fresh sandbox (or --url); exit 1 when any test fails."""
    from conformance.runner import execute

    raise Exit(code=execute(folder, url, verbose=verbose, name_filter=name, es_version=es_version))


# ---- options shared by the engine tasks ---------------------------------------------------------------------------
OUTPUT_HELP = {
    "no_color": "no colour (also: the NO_COLOR environment variable); colour is used only on a terminal anyway",
    "quiet": "print only the result and errors (no progress)",
    "verbose": "also print every request to Elasticsearch: method, URL, status, time (secrets redacted)",
    "debug": "show the traceback of an error",
}
COMMON_HELP = {
    "env": "environment name: reads .env.<env> over .env (default: default)",
    "var": "template variable NAME=value (repeatable; wins over the environment)",
    "manifests": "folder of manifests (default: manifests/)",
    "stack": "stack name the ledger records ownership under (default: $ES_STACK_NAME or 'default')",
    "sandbox": "use an in-process local sandbox (state kept in .cache/sandbox-state.json, or "
               "$ES_STACK_SANDBOX_STATE) instead of a cluster; manifests get SANDBOX_MODEL_PATH, a tiny local "
               "cross-encoder (no model hub is reachable)",
    "es_version": "with --sandbox: the Elasticsearch version the sandbox runs as, 8.19.x or 9.x (default 9.1.0)",
    **OUTPUT_HELP,
}
ITERABLE = ["var"]
OFFLINE_HELP = {k: COMMON_HELP[k] for k in ("env", "var", "manifests", *OUTPUT_HELP)}
LOCK_HELP = "wait up to this many seconds for a stack lock another run holds (default 0: fail at once)"


class _Output:
    """The output options of the running task (set by _engine_task)."""

    def __init__(self, no_color=False, quiet=False, verbose=False, debug=False, json=False):
        self.no_color, self.quiet, self.verbose, self.debug, self.json = no_color, quiet, verbose, debug, json
        self.reporter = None

    @property
    def color(self) -> bool:
        return use_color(sys.stdout, self.no_color) and not self.json

    def note(self, message: str) -> None:
        """A human line: stderr, unless --quiet."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def result(self, text: str) -> None:
        """The result in human form: stdout, or stderr when stdout is reserved for JSON."""
        print(text, file=sys.stderr if self.json else sys.stdout, flush=True)


OUT = _Output()


def _explain(exc: BaseException, target: str) -> str:
    """An exception as the message the user sees (one or two lines for everything the user can fix)."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    from provisioning.output import explain_api_error, explain_transport

    for cause in _causes(exc):
        if isinstance(cause, ApiError):
            step = None
            if exc is not cause:
                step = str(exc).split("Elasticsearch answered")[0].rstrip(": ") or None
            explained = explain_api_error(cause, target, step)
            if explained:
                return explained
        if isinstance(cause, TransportError) and not isinstance(cause, ApiError):
            step = str(exc).split("cannot reach Elasticsearch")[0].rstrip(": ") if exc is not cause else ""
            return (f"{step}: " if step else "") + explain_transport(cause, target)
    return str(exc)


def _causes(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _interrupted(reporter: Any, command: str) -> str:
    lines = ["interrupted"]
    if reporter is not None and (reporter.finished or reporter.in_flight):
        if reporter.finished:
            lines.append("  finished: " + ", ".join(f"{key} ({action})" for key, action, _ in reporter.finished))
        if reporter.in_flight:
            lines.append("  in flight (may be partly done): " + ", ".join(
                f"{key} ({action})" for key, (action, _) in reporter.in_flight.items()))
        lines.append(f"  the stack lock was released; running `{command}` again converges: it plans only what is "
                     f"left")
    else:
        lines[0] += "; no change had started (the stack lock, if taken, was released)"
    return "\n".join(lines)


def _engine_task(fn):
    """Output options, redaction, errors and interrupts of every engine task (the only place that does this)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        global OUT
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        from provisioning import ProvisioningError

        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        options = bound.arguments
        OUT = _Output(no_color=options.get("no_color", False), quiet=options.get("quiet", False),
                      verbose=options.get("verbose", False), debug=options.get("debug", False),
                      json=options.get("json", False))
        register_environment_secrets(os.environ)
        _Session.last_target = None
        # a cancelled CI job gets SIGTERM: unwind like Ctrl-C so the stack lock is released
        with contextlib.suppress(ValueError):  # ValueError: not the main thread (a test runner's worker)
            signal.signal(signal.SIGTERM, signal.default_int_handler)
        streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = RedactingStream(streams[0]), RedactingStream(streams[1])
        handler = _verbose_logging() if OUT.verbose else None
        message, code = None, 1
        try:
            return fn(*args, **kwargs)
        except Exit:
            raise
        except ProvisioningError as exc:
            message, code = _explain(exc, _Session.last_target or "the cluster"), exc.exit_code
            _traceback(exc)
        except (TransportError, ApiError) as exc:  # no HTTP answer at all, or an answer no engine call converted
            message = _explain(exc, _Session.last_target or "the cluster")
            _traceback(exc)
        except KeyboardInterrupt:
            message, code = _interrupted(OUT.reporter, _command_line()), 130
        finally:
            if handler is not None:
                import logging

                logging.getLogger("elastic_transport.transport").removeHandler(handler)
            sys.stdout.flush()
            sys.stdout, sys.stderr = streams
        text = REDACTOR(f"error: {message}" if code != 130 else message)
        if OUT.json and code != 130:
            print(REDACTOR(jsonlib.dumps({"format_version": 2, "error": text.removeprefix("error: "),
                                          "exit_code": code}, indent=2)))
        raise Exit(text, code=code)

    return wrapper


def _traceback(exc: BaseException) -> None:
    if OUT.debug:
        import traceback

        sys.stderr.write("".join(traceback.format_exception(exc)))


def _command_line() -> str:
    argv = sys.argv[:]
    binary = Path(argv[0]).name if argv else "invoke"
    return " ".join([binary if binary in ("invoke", "es-stack") else "invoke", *argv[1:]])


def _verbose_logging():
    """--verbose: each request the client sends (method, URL, status, duration), through the redacting filter."""
    import logging

    class _Line(logging.Handler):
        def emit(self, record):
            print(f"> {REDACTOR(record.getMessage())}", file=sys.stderr, flush=True)

    handler = _Line(level=logging.DEBUG)
    logger = logging.getLogger("elastic_transport.transport")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


class _SandboxInUse(Exception):
    pass


class _Session:
    """Resources, variables and (lazily) a context for one task run."""

    last_target: str | None = None

    def __init__(self, env=None, var=None, manifests=None, stack=None, sandbox=False, require_secrets=True,
                 es_version=None):
        from provisioning.variables import load_variables

        self.env, self.var = env, list(var or [])
        if sandbox and not any(v.startswith("SANDBOX_MODEL_PATH=") for v in self.var):
            self.var.append(f"SANDBOX_MODEL_PATH={_sandbox_model()}")
        self.manifests = Path(manifests or "manifests")
        self.root = project_dir()
        self.variables = load_variables(self.root, env, self.var)
        register_environment_secrets(self.variables.env)
        self.stack = stack or self.variables.env.get("ES_STACK_NAME") or "default"
        self.use_sandbox = sandbox
        self.es_version = es_version
        if es_version and not sandbox:
            from provisioning.errors import ConfigError

            raise ConfigError("--es-version chooses the sandbox's Elasticsearch version: use it with --sandbox")
        self.require_secrets = require_secrets
        self._sandbox = None
        self._sandbox_lock = None
        self.target = None
        # what a saved plan's reviewer read: the manifests and the templates they import
        self.folders = [self.manifests, self.manifests.resolve().parent / "templates"]

    def resources(self):
        from provisioning import load_manifests

        resources = load_manifests(self.manifests, environment=self.env, variables=self.var,
                                   env_file_dir=self.root, stack=self.stack)
        for r in resources:  # the variables the manifests read secrets from
            for ref in (r.spec.get("secrets") or {}).values():
                if isinstance(ref, dict) and ref.get("env"):
                    REDACTOR.add(self.variables.env.get(ref["env"]))
            token_env = (r.spec.get("source") or {}).get("token_env") if isinstance(r.spec.get("source"),
                                                                                   dict) else None
            if token_env:
                REDACTOR.add(self.variables.env.get(token_env))
        return resources

    def context(self, **options):
        """A context on the cluster (or a fresh in-process sandbox); its ledger is read by the first plan."""
        from provisioning import Options, Reporter, connect, describe_target, make_context
        from provisioning.connection import check_reachable

        url = None
        if self.use_sandbox:
            url = self._start_sandbox()
        # a saved plan names its target: the sandbox's port changes from run to run, its state file does not
        self.target = f"local sandbox (state {self.sandbox_state()})" if url else describe_target(self.variables.env)
        _Session.last_target = url or self.target
        client = connect(self.variables.env, url=url)
        check_reachable(client)
        OUT.note(f"cluster: {self.target}  stack: {self.stack}")
        from provisioning.context import progress_interval

        reporter = Reporter(quiet=OUT.quiet, verbose=OUT.verbose, interval=progress_interval(self.variables.env))
        OUT.reporter = reporter
        opts = Options(**options)
        opts.require_secrets = self.require_secrets
        return make_context(client, stack=self.stack, options=opts, reporter=reporter, environ=self.variables.env)

    def _start_sandbox(self):
        import logging

        from sandbox.server import Sandbox

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log in task output
        from sandbox.cluster import DEFAULT_VERSION
        from sandbox.versions import check_supported

        version = self.es_version or DEFAULT_VERSION
        check_supported(version)
        state = self.sandbox_state()
        state.parent.mkdir(parents=True, exist_ok=True)
        self._sandbox_lock = _lock_sandbox_state(state)
        self._sandbox = Sandbox(version=version, state_file=state).start()
        OUT.note(f"using the local sandbox (not a real cluster, Elasticsearch {version}) at {self._sandbox.url}, "
                 f"state in {state}")
        return self._sandbox.url

    def sandbox_state(self) -> Path:
        """One state file per version: an 8.19 sandbox and a 9.x one are two different clusters."""
        state = sandbox_state()
        return state if not self.es_version else state.with_name(f"{state.stem}-{self.es_version}{state.suffix}")

    def close(self):
        if self._sandbox is not None:
            self._sandbox.stop()
        if self._sandbox_lock is not None:
            self._sandbox_lock.close()  # releases the flock


def _lock_sandbox_state(state: Path):
    """One --sandbox run per state file: two in-process sandboxes on one file would each overwrite the other."""
    import fcntl

    from provisioning import ConfigError

    handle = open(state.with_name(state.name + ".lock"), "a+")  # noqa: SIM115 (held for the run)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"another --sandbox run ({holder}) is using the sandbox state {state}; wait for it to "
                          f"finish, or give this run its own state with ES_STACK_SANDBOX_STATE=FILE") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}: {_command_line()}")
    handle.flush()
    return handle


def _sandbox_model():
    from sandbox.demo_model import ensure_demo_model

    path = ensure_demo_model(sandbox_model_dir())
    OUT.note(f"offline: the sandbox reaches no model hub; SANDBOX_MODEL_PATH={path} is a tiny random-weight "
             "cross-encoder built locally, so reranked orders are NOT meaningful")
    return path


def _run(session_args, body):
    session = _Session(**session_args)
    try:
        return body(session)
    finally:
        session.close()


def _confirm(what):
    def confirm(plan):
        print(f"\nDo you want to {what}? Only 'yes' will be accepted: ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip() == "yes"
    return confirm


def _guard_interactive(yes, what):
    """On a terminal, ask; elsewhere require --yes (a pipeline must say so explicitly)."""
    from provisioning import Refused

    if yes:
        return lambda plan: True
    if not sys.stdin.isatty():
        def refuse(plan):
            raise Refused(f"not running on a terminal: pass --yes to {what} without a confirmation prompt")
        return refuse
    return _confirm(what)


def _render(plan, show_requests=False, title=None):
    from provisioning.report import render_plan

    return render_plan(plan, color=OUT.color, show_requests=show_requests, title=title)


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---- machine-readable documents and report files -----------------------------------------------------------------
def checks_to_list(results):
    return [{"name": r.name, "index": r.index, "ok": r.ok, "total": r.total,
             "expectations": [{"description": e.description, "ok": e.ok, "detail": e.detail}
                              for e in r.expectations],
             "hits": [{"_id": h.get("_id"), "_score": h.get("_score"), "_source": h.get("_source")}
                      for h in r.hits]} for r in results]


def _write_reports(junit=None, markdown=None, plan=None, checks=None, command="plan", applied=None):
    from provisioning.reports import checks_to_junit, to_markdown

    if junit:
        write_file(junit, checks_to_junit(checks or []))
        OUT.note(f"check results written to {junit} (JUnit XML)")
    if markdown:
        write_file(markdown, to_markdown(plan, checks, command=command, applied=applied))
        OUT.note(f"{command} written to {markdown} (Markdown)")


def _summary(reporter, what, result):
    applied = len(result.applied)
    done = f"{_plural(applied, 'resource')} deleted" if what == "destroy" else f"{_plural(applied, 'change')} applied"
    lines = [f"{what} complete: {done}." if applied else f"{what} complete: nothing to change."]
    if reporter is not None and reporter.finished:
        lines += [f"  {key}  {action}  {seconds:.1f}s" for key, action, seconds in reporter.finished]
    return "\n".join(lines)


def _require_plan_secrets(path, environ):
    """A saved plan made without a write-only secret is applied only with it: refused before any write."""
    from provisioning import ConfigError
    from provisioning.model import SECRET_MARKER

    try:
        data = jsonlib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # planfile.load says what is wrong with the file

    def markers(node):
        if isinstance(node, dict):
            if SECRET_MARKER in node:
                yield node[SECRET_MARKER]
            for value in node.values():
                yield from markers(value)
        elif isinstance(node, list):
            for value in node:
                yield from markers(value)

    missing = sorted({name for name in markers(data.get("changes", [])) if not environ.get(name)})
    if missing:
        raise ConfigError(f"the saved plan sends write-only secrets read at apply; set {', '.join(missing)} in the "
                          f"environment or in .env (nothing was changed)")


def _converge_with_lock_wait(lock_timeout, attempt):
    """Run `attempt()`; while another run holds the stack lock, wait up to lock_timeout seconds, saying who holds it."""
    from provisioning import LockHeld

    deadline = time.monotonic() + float(lock_timeout or 0)
    last_holder = None
    while True:
        try:
            return attempt()
        except LockHeld as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            if exc.holder != last_holder:
                OUT.note(f"waiting up to {remaining:.0f}s for the stack lock, held by {exc.holder} since {exc.since}")
                last_holder = exc.holder
            time.sleep(min(1.0, remaining))


def _evaluations(ctx, result):
    """The evaluations declared to run after apply (post-apply assertions, like checks): their results."""
    if ctx is None or result is None or result.plan is None or result.plan.destroy:
        return []
    from provisioning.evaluation.run import run_evaluations

    return run_evaluations(ctx, result.plan.resources)


def _outcome(what, session, result, *, json_output, junit, markdown, shown, ctx=None):
    """The end of apply and destroy: one JSON document, or the human summary and checks; reports; exit code."""
    from provisioning.report import plan_to_dict, render_checks

    reporter = OUT.reporter
    plan = shown.get("plan")
    evaluations = _evaluations(ctx, result)
    if json_output:
        document = {"format_version": 2, "command": what,
                    "outcome": "cancelled" if result is None else "applied" if result.applied else "no changes",
                    "plan": plan_to_dict(plan) if plan is not None else None,
                    "applied": [{"key": k, "action": a, "seconds": round(s, 3)}
                                for k, a, s in (reporter.finished if reporter else [])],
                    "checks": checks_to_list(result.checks) if result is not None else [],
                    "checks_failed": bool(result is not None and result.checks_failed),
                    "evaluations": [jsonlib.loads(_evaluation_json(evaluations))] if evaluations else []}
        print(jsonlib.dumps(document, indent=2, ensure_ascii=False, default=str))
    _write_reports(junit, markdown, plan=plan, checks=result.checks if result else None, command=what,
                   applied=reporter.finished if reporter else None)
    if result is None:
        raise Exit(f"{what} cancelled; nothing was changed", code=1)
    OUT.result(_summary(reporter, what, result))
    if result.checks:
        OUT.result(render_checks(result.checks))
    if evaluations and not json_output:
        from provisioning.evaluation.report import render_text

        OUT.result(render_text(evaluations))
    if result.checks and result.checks_failed:
        failed = sum(not c.ok for c in result.checks)
        raise Exit(f"{what} succeeded but {_plural(failed, 'check')} failed", code=1)
    if any(not e.ok for e in evaluations):
        failed = sum(not e.ok for e in evaluations)
        raise Exit(f"{what} succeeded but {_plural(failed, 'evaluation')} failed their relevance gates", code=1)


def _evaluation_json(results):
    from provisioning.evaluation.report import to_json

    return to_json(results)


def _show_into(shown, json_output, show_requests=False):
    def show(plan):
        shown["plan"] = plan
        if not json_output:
            OUT.result(_render(plan, show_requests))
    return show


# ---- the engine tasks ---------------------------------------------------------------------------------------------
def _plan_body(json_output, detailed_exitcode, footer, out=None, show_requests=False, allow_data_loss=False,
               title=None, markdown=None):
    """plan and status: read-only plan, shown (and saved with --out); exit 2 on changes with --detailed-exitcode."""
    def body(session):
        from provisioning import make_plan
        from provisioning.planfile import save
        from provisioning.report import plan_to_json

        resources = session.resources()
        ctx = session.context(allow_data_loss=allow_data_loss)
        result = make_plan(resources, ctx)
        if json_output:
            print(plan_to_json(result))
        else:
            OUT.result(_render(result, show_requests, title))
        if out:
            save(result, out, target=session.target, folders=session.folders)
            OUT.note(f"plan saved to {out}: apply exactly it with `invoke apply --plan {out}`")
        _write_reports(markdown=markdown, plan=result, command=title or "plan")
        footer(ctx)
        if detailed_exitcode and result.has_changes:
            raise Exit(code=2)
    return body


def _lease_text(ctx, holder):
    if not holder.get("expires_at"):
        return ""
    if ctx.ledger.lock_expired(holder):
        return f", EXPIRED at {holder['expires_at']} (its run died; the next apply takes it over)"
    return f", lease until {holder['expires_at']} (renewed while that run lives)"


def _holder_text(ctx, holder):
    return f"{holder.get('holder')} since {holder.get('acquired_at')}{_lease_text(ctx, holder)}"


def _lock_note(ctx):
    holder = ctx.ledger.lock_holder
    if holder:
        print(f"note: the stack is locked by {_holder_text(ctx, holder)}", file=sys.stderr)


def _lock_status(ctx):
    holder = ctx.ledger.lock_holder
    print(f"lock: held by {_holder_text(ctx, holder)}" if holder else "lock: free", file=sys.stderr)
    print(f"managed resources: {len(ctx.ledger.all_entries())}", file=sys.stderr)


@task(iterable=ITERABLE, help=OFFLINE_HELP)
@_engine_task
def render(c, env=None, var=None, manifests=None, no_color=False, quiet=False, verbose=False, debug=False):
    """Print the manifests after Jinja rendering (no cluster needed)."""
    from provisioning import render_manifests

    session = _Session(env, var, manifests)
    for file, text in render_manifests(session.manifests, environment=env, variables=session.var,
                                       env_file_dir=session.root).items():
        print(f"# ---- {file}\n{text.rstrip()}\n")


@task(iterable=ITERABLE, help=OFFLINE_HELP)
@_engine_task
def validate(c, env=None, var=None, manifests=None, no_color=False, quiet=False, verbose=False, debug=False):
    """Render and validate the manifests; report every problem with file and line (no cluster needed)."""
    resources = _Session(env, var, manifests).resources()
    print(f"{_plural(len(resources), 'resource')} valid: " + ", ".join(r.key for r in resources))


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the plan as one JSON document (format_version 2)",
                               "detailed_exitcode": "exit 0 when there are no changes, 2 when there are, 1 on errors",
                               "out": "save the plan to this file; `invoke apply --plan FILE` applies exactly it",
                               "show_requests": "print the requests and steps each change will run",
                               "allow_data_loss": "record in the saved plan that its data loss is accepted",
                               "markdown": "also write the plan as Markdown to this file (a pull-request comment, "
                                           "$GITHUB_STEP_SUMMARY: appended to)"})
@_engine_task
def plan(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None,
         json=False, detailed_exitcode=False,
         out=None, show_requests=False, allow_data_loss=False, markdown=None, no_color=False, quiet=False,
         verbose=False, debug=False):
    """Show what apply would change (read-only); --out saves it for `invoke apply --plan`."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version,
              require_secrets=False),
         _plan_body(json, detailed_exitcode, _lock_note, out, show_requests, allow_data_loss, markdown=markdown))


APPLY_HELP = {
    **COMMON_HELP, "yes": "apply without asking (required when not on a terminal)",
    "parallelism": "independent changes applied at once (default 4)",
    "allow_data_loss": "allow changes that lose data (deleting documents or an index that holds them)",
    "json": "print one JSON document: the plan, the changes applied (with their time) and the check results",
    "wait_timeout": "seconds to wait for asynchronous work such as model deployments (default 600)",
    "wait_for": "deployments are ready when fully_allocated (default, as Elastic advises) or started (serving "
                "with fewer allocations than the target)",
    "plan": "apply exactly this saved plan (from `invoke plan --out`); the manifests are not rendered again",
    "show_requests": "print the requests and steps each change will run",
    "lock_timeout": LOCK_HELP,
    "junit": "write the check results to this file as JUnit XML",
    "markdown": "write the plan and the check results to this file as Markdown ($GITHUB_STEP_SUMMARY: appended to)",
    "upload_workers": "model definition parts uploaded at once (default $ES_STACK_UPLOAD_WORKERS, else 16)",
}


@task(iterable=ITERABLE, help=APPLY_HELP)
@_engine_task
def apply(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, yes=False, parallelism=4,
          allow_data_loss=False, json=False, wait_timeout=600, plan=None, show_requests=False,
          wait_for="fully_allocated", lock_timeout=0, junit=None, markdown=None, no_color=False, quiet=False,
          verbose=False, debug=False, upload_workers=None):
    """Converge the cluster to the manifests: plan, confirm, apply exactly that plan, verify, run checks."""
    from provisioning import converge

    def body(session):
        from provisioning import ConfigError
        from provisioning.model_import.deployment import WAIT_FOR

        if wait_for not in WAIT_FOR:
            raise ConfigError(f"--wait-for must be one of {', '.join(WAIT_FOR)}, not {wait_for!r}")
        options = dict(parallelism=int(parallelism), allow_data_loss=allow_data_loss,
                       wait_timeout=float(wait_timeout), wait_for=wait_for,
                       upload_workers=int(upload_workers) if upload_workers else None)
        shown = {}
        show = _show_into(shown, json, show_requests)
        if plan:
            from provisioning.planfile import apply_file

            _require_plan_secrets(plan, session.variables.env)
            ctx = session.context(**options)
            result = _converge_with_lock_wait(lock_timeout, lambda: apply_file(
                plan, ctx, target=session.target, confirm=_guard_interactive(yes, "apply this saved plan"),
                show=show))
        else:
            resources = session.resources()
            ctx = session.context(**options)
            result = _converge_with_lock_wait(lock_timeout, lambda: converge(
                resources, ctx, command="invoke apply", confirm=_guard_interactive(yes, "apply these changes"),
                show=show))
        _outcome("apply", session, result, json_output=json, junit=junit, markdown=markdown, shown=shown, ctx=ctx)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "yes": "destroy without asking (required when not on a terminal)",
                               "parallelism": "independent deletes run at once (default 4)",
                               "allow_data_loss": "allow deleting indices that hold documents",
                               "json": "print one JSON document: the plan and the changes applied",
                               "lock_timeout": LOCK_HELP,
                               "markdown": "write the destroy plan to this file as Markdown"})
@_engine_task
def destroy(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, yes=False, parallelism=4,
            allow_data_loss=False, json=False, lock_timeout=0, markdown=None, no_color=False, quiet=False,
            verbose=False, debug=False):
    """Delete everything this stack created, in reverse dependency order (never anything it did not create)."""
    from provisioning import converge

    def body(session):
        resources = session.resources()
        ctx = session.context(parallelism=int(parallelism), allow_data_loss=allow_data_loss)
        shown = {}
        result = _converge_with_lock_wait(lock_timeout, lambda: converge(
            resources, ctx, command="invoke destroy", destroy=True,
            confirm=_guard_interactive(yes, "destroy these resources"), show=_show_into(shown, json)))
        _outcome("destroy", session, result, json_output=json, junit=None, markdown=markdown, shown=shown)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the check results as one JSON document",
                               "junit": "write the check results to this file as JUnit XML",
                               "markdown": "write the check results to this file as Markdown"})
@_engine_task
def check(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None,
          json=False, junit=None, markdown=None,
          no_color=False, quiet=False, verbose=False, debug=False):
    """Run every check of the manifests (searches with expectations); exit 1 if one fails."""
    from provisioning import render_checks, run_checks

    def body(session):
        resources = session.resources()
        results = run_checks(session.context(), resources, manual=True)
        failed = sum(not r.ok for r in results)
        if json:
            print(jsonlib.dumps({"format_version": 2, "command": "check", "checks": checks_to_list(results),
                                 "passed": len(results) - failed, "failed": failed}, indent=2, ensure_ascii=False,
                                default=str))
        else:
            print(render_checks(results) or "no checks declared")
        _write_reports(junit, markdown, checks=results, command="check")
        if failed:
            raise Exit(f"{failed} of {_plural(len(results), 'check')} failed", code=1)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the drift as JSON",
                               "detailed_exitcode": "exit 0 when in sync, 2 on drift, 1 on errors"})
@_engine_task
def status(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None,
           json=False, detailed_exitcode=False,
           no_color=False, quiet=False, verbose=False, debug=False):
    """Drift: what differs between the cluster and the manifests right now, and who holds the lock."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version,
              require_secrets=False),
         _plan_body(json, detailed_exitcode, _lock_status, title="status"))


@task(iterable=ITERABLE, help={**COMMON_HELP, "force": "delete the lock whoever holds it (only when no run is "
                                                       "active: a stale lock left by a killed run)"})
@_engine_task
def unlock(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None,
           force=False, no_color=False,
           quiet=False, verbose=False, debug=False):
    """Show the stack lock; with --force, break a stale one."""
    def body(session):
        ctx = session.context()
        if not force:
            ctx.ledger.load()
            holder = ctx.ledger.lock_holder
            if holder is None:
                print(f"stack {ctx.stack!r} is not locked")
                return
            raise Exit(f"stack {ctx.stack!r} is locked by {holder.get('holder')} (pid {holder.get('pid')}, "
                       f"`{holder.get('command')}`) since {holder.get('acquired_at')}{_lease_text(ctx, holder)}; "
                       f"if that run is dead, wait for the lease to expire or run "
                       f"`invoke unlock --force --stack {ctx.stack}`", code=1)
        broken = ctx.ledger.break_lock()
        print(f"broke the lock held by {broken.get('holder')} (pid {broken.get('pid')}, `{broken.get('command')}`) "
              f"since {broken.get('acquired_at')}" if broken else f"stack {ctx.stack!r} was not locked")
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


def search_defaults(resources, index=None, fields=None):
    """The index and fields `search` uses when not given: from the manifests of the selected environment (the one
    index the checks search; else the one index declared), the index's text fields."""
    from provisioning import ConfigError

    if not index:
        checked = sorted({r.spec.get("index") for r in resources if r.kind == "check" and r.spec.get("index")})
        declared = sorted({r.name for r in resources if r.kind == "index"})
        candidates = checked if len(checked) == 1 else declared if len(declared) == 1 else checked or declared
        if len(candidates) != 1:
            listed = ", ".join(candidates) or "none declared"
            raise ConfigError(f"choose --index: the manifests do not name one index to search (candidates: {listed})")
        index = candidates[0]
    if not fields:
        declared = next((r for r in resources if r.kind == "index" and r.name == index), None)
        properties = (((declared.spec.get("mappings") or {}).get("properties") or {}) if declared else {})
        names = [name for name, m in properties.items() if isinstance(m, dict) and m.get("type") == "text"]
        fields = ",".join(names) or "title,plot"
    return index, fields


@task(positional=["query"], iterable=ITERABLE, help={
    **COMMON_HELP, "query": "lexical query text (multi_match over --fields)",
    "index": "index or alias to search (default: the index the manifests' checks search, or the one index declared)",
    "rerank": "rerank the lexical hits against this text with a text_similarity_reranker",
    "inference_id": "rerank endpoint (default: the rerank inference_endpoint of the manifests)",
    "fields": "comma-separated fields: searched, and printed (first = title) (default: the index's text fields)",
    "rerank_field": "the field the reranker reads (default: plot if searched, else the second field)",
    "size": "number of hits (default 10)"})
@_engine_task
def search(c, query, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None,
           index=None, rerank=None,
           inference_id=None, fields=None, rerank_field=None, size=10, no_color=False, quiet=False, verbose=False,
           debug=False):
    """Ad-hoc search: lexical, or reranked semantically with --rerank "text"; prints rank, score, title, plot."""
    from elasticsearch import ApiError

    from provisioning.adhoc import format_hits, rerank_endpoint, search_body
    from provisioning.errors import api_error

    def body(session):
        resources = session.resources() if not (index and fields and (inference_id or not rerank)) else []
        target, field_list = search_defaults(resources, index, fields)
        endpoint = inference_id
        if rerank and not endpoint:
            endpoint = rerank_endpoint(resources)
        names = [f.strip() for f in field_list.split(",") if f.strip()]
        reranked = rerank_field or ("plot" if "plot" in names else names[min(1, len(names) - 1)])
        OUT.note(f"searching {target} (fields {', '.join(names)})")
        request = search_body(query, fields=names, rerank=rerank, inference_id=endpoint,
                              rerank_field=reranked, size=int(size))
        try:
            response = session.context().client.search(index=target, body=request)
        except ApiError as exc:
            raise api_error(exc, resource=f"search {target}") from exc
        print(format_hits(response.body, names))
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE + ["name"], help={
    **COMMON_HELP, "json": "print the results as one JSON document (nothing else on stdout)",
    "junit": "also write JUnit XML to FILE (a testsuite per evaluation, a testcase per gate and baseline check)",
    "markdown": "also write a Markdown report to FILE", "html": "also write a self-contained HTML page to FILE",
    "save_baseline": "save the scores to FILE as the accepted baseline",
    "compare": "compare with the baseline FILE: fail when a metric dropped by more than the tolerance",
    "tolerance": "allowed drop below the baseline (default: the evaluation's baseline_tolerance, else 0.01)",
    "method": "auto (default: _rank_eval, else _msearch), rank_eval or msearch",
    "name": "only this evaluation (repeatable)"})
@_engine_task
def evaluate(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, json=False,
             junit=None, markdown=None, html=None, save_baseline=None, compare=None, tolerance=None, method=None,
             name=None, no_color=False, quiet=False, verbose=False, debug=False):
    """Run the relevance evaluations of the manifests; exit 1 when a gate fails or a metric regressed."""
    from provisioning import ConfigError
    from provisioning.evaluation import report
    from provisioning.evaluation.run import compare_baseline, load_baseline, run_evaluations
    from provisioning.evaluation.run import save_baseline as write_baseline

    def body(session):
        if method not in (None, "auto", "rank_eval", "msearch"):
            raise ConfigError(f"--method must be auto, rank_eval or msearch, not {method!r}")
        baseline = load_baseline(compare) if compare else None
        results = run_evaluations(session.context(), session.resources(), manual=True, method=method,
                                  names=name or None)
        if not results:
            raise ConfigError("no evaluation declared" + (f" named {', '.join(name)}" if name else ""))
        if baseline is not None:
            compare_baseline(results, baseline, None if tolerance is None else float(tolerance))
        if json:
            print(report.to_json(results))
        else:
            OUT.result(report.render_text(results))
        for path, render in ((junit, report.to_junit), (markdown, report.to_markdown), (html, report.to_html)):
            if path:
                write_file(path, render(results))
                OUT.note(f"wrote {path}")
        if save_baseline:
            write_baseline(results, save_baseline)
            OUT.note(f"baseline saved to {save_baseline}")
        failed = [r for r in results if not r.ok]
        if failed:
            raise Exit(f"{len(failed)} of {len(results)} evaluations failed: "
                       + ", ".join(r.name for r in failed), code=1)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(name="import", iterable=["name", "var"], help={
    **{k: COMMON_HELP[k] for k in ("env", "var", "sandbox")},
    "out": "folder to write the manifests into (one file per object; existing files are never overwritten)",
    "name": "a name or fnmatch pattern (`movies*`, or `kind/name`) of what to import (repeatable; default: "
            "everything the tool could manage that no stack owns)",
    "adopt": "mark every written resource `adopt: true`: the next apply makes the objects this stack's"})
@_engine_task
def import_(c, out, name=None, adopt=False, env=None, var=None, sandbox=False):
    """Write manifests for existing indices, trained models and inference endpoints (documents are not exported)."""
    from provisioning.adoption import import_existing

    def body(session):
        written, skipped = import_existing(session.context().client, out, names=name or [], adopt=adopt)
        for path in written:
            print(f"wrote {path}")
        for line in skipped:
            OUT.note(f"left out {line}")
        print(f"{len(written)} manifests written to {out}; review them (a model's source may be a guess), then "
              f"`invoke plan --manifests {out}`" + ("" if adopt else " (add `adopt: true` to adopt an object)"))
    _run(dict(env=env, var=var, sandbox=sandbox), body)


@task(iterable=ITERABLE, help={**{k: COMMON_HELP[k] for k in ("env", "var", "sandbox")},
                               "json": "print the stacks as JSON"})
@_engine_task
def stacks(c, env=None, var=None, sandbox=False, json=False):
    """List the stacks the cluster's ledger records: resources per kind, adopted ones, who holds each lock."""
    from provisioning.adoption import stacks as recorded_stacks

    def body(session):
        found = recorded_stacks(session.context().client)
        if json:
            print(jsonlib.dumps(found, indent=2))
            return
        if not found:
            print("no stack is recorded in this cluster")
        for entry in found:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(entry["resources"].items())) or "no resources"
            lock = entry["lock"]
            held = f"locked by {lock.get('holder')} since {lock.get('acquired_at')} (lease until " \
                   f"{lock.get('expires_at')})" if lock else "not locked"
            adopted = f", {entry['adopted']} adopted" if entry["adopted"] else ""
            print(f"{entry['stack']}: {sum(entry['resources'].values())} resources ({kinds}{adopted}); {held}")
    _run(dict(env=env, var=var, sandbox=sandbox), body)


TASKS = [sandbox, conformance, render, validate, plan, apply, destroy, check, status, unlock, search, evaluate,
         import_, stacks]
__all__ = ["apply", "check", "conformance", "destroy", "evaluate", "import_", "main", "namespace", "plan", "render",
           "sandbox", "search", "stacks", "status", "unlock", "validate"]

namespace = Collection(*TASKS)


def main(argv: list[str] | None = None) -> Any:
    """The `es-stack` console command: the same tasks, options and help as `invoke ...` in this repository."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("es-stack")
    except PackageNotFoundError:
        release = "unknown"
    program = Program(namespace=namespace, version=release, name="es-stack", binary="es-stack")
    return program.run(argv)


if __name__ == "__main__":  # python -m provisioning.cli ...
    main()
