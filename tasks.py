"""Invoke tasks: each parses options, calls one engine function and maps the outcome to an exit code.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's options.
"""

from __future__ import annotations

import sys

from invoke import task

# Invoke stops Python writing bytecode before it loads this file (its --write-pyc flag), so in a checkout (the
# editable install of the quick start) every command compiled the whole provisioning package again: about 70 ms of
# each start-up (issue 14). Cached bytecode is what an installed package has; -B and PYTHONDONTWRITEBYTECODE still win.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)


@task(help={
    "port": "port to listen on (default 9200)",
    "state_file": "keep the sandbox's state in this JSON file so it survives a restart",
    "version": "Elasticsearch version reported by GET / (default 9.1.0)",
    "api_key": "require authentication: this bootstrap key (repeatable) acts as the superuser and can create "
               "restricted keys (POST /_security/api_key); without it the sandbox is open",
}, iterable=["api_key"])
def sandbox(c, port=9200, state_file=None, version=None, api_key=None):
    """Run the local Elasticsearch 9.x stand-in on 127.0.0.1 (for tests and the offline quick start)."""
    from sandbox.server import main

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
})
def conformance(c, folder=None, url=None, verbose=False, name=None):
    """Run Elasticsearch's YAML REST tests against a fresh sandbox (or --url); exit 1 when any test fails."""
    from invoke import Exit

    from conformance.runner import execute

    raise Exit(code=execute(folder, url, verbose=verbose, name_filter=name))


# ---- the engine tasks ------------------------------------------------------------------------------------------
# Every task below: parse options -> one engine call -> print -> exit code. ProvisioningError subclasses become
# `Exit(message, code)` in ONE place (_engine_task). Secrets are never printed: messages name variables only.
import functools  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent
SANDBOX_STATE = Path(os.environ.get("ES_STACK_SANDBOX_STATE") or ROOT / ".cache" / "sandbox-state.json")
SANDBOX_MODEL = ROOT / ".cache" / "sandbox-model"

COMMON_HELP = {
    "env": "environment name: reads .env.<env> over .env (default: default)",
    "var": "template variable NAME=value (repeatable; wins over the environment)",
    "manifests": "folder of manifests (default: manifests/)",
    "stack": "stack name the ledger records ownership under (default: $ES_STACK_NAME or 'default')",
    "sandbox": "use an in-process local sandbox (state kept in .cache/sandbox-state.json) instead of a cluster; "
               "manifests get SANDBOX_MODEL_PATH, a tiny local cross-encoder (no model hub is reachable)",
}
ITERABLE = ["var"]
OFFLINE_HELP = {k: COMMON_HELP[k] for k in ("env", "var", "manifests")}


def _engine_task(fn):
    """Turns engine errors into one message and exit code (the only place that does)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from elastic_transport import TransportError
        from invoke import Exit

        from provisioning import ProvisioningError

        # a cancelled CI job gets SIGTERM: unwind like Ctrl-C so the stack lock is released
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return fn(*args, **kwargs)
        except ProvisioningError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except TransportError as exc:  # no HTTP answer at all (after the client's retries)
            raise Exit(f"error: cannot reach Elasticsearch: {exc.message}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted (the stack lock, if taken, was released)", code=130) from None

    return wrapper


class _Session:
    """Resources, variables and (lazily) a context for one task run."""

    def __init__(self, env=None, var=None, manifests=None, stack=None, sandbox=False):
        from provisioning.variables import load_variables

        self.env, self.var = env, list(var or [])
        if sandbox and not any(v.startswith("SANDBOX_MODEL_PATH=") for v in self.var):
            self.var.append(f"SANDBOX_MODEL_PATH={_sandbox_model()}")
        self.manifests = Path(manifests or "manifests")
        self.variables = load_variables(ROOT, env, self.var)
        self.stack = stack or self.variables.env.get("ES_STACK_NAME") or "default"
        self.use_sandbox = sandbox
        self._sandbox = None
        self.target = None
        # what a saved plan's reviewer read: the manifests and the templates they import
        self.folders = [self.manifests, ROOT / "templates"]

    def resources(self):
        from provisioning import load_manifests

        return load_manifests(self.manifests, environment=self.env, variables=self.var, env_file_dir=ROOT)

    def context(self, **options):
        """A context on the cluster (or a fresh in-process sandbox); its ledger is read by the first plan."""
        from provisioning import Options, Reporter, connect, describe_target, make_context

        url = None
        if self.use_sandbox:
            import logging

            from sandbox.server import Sandbox

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log in task output
            SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
            self._sandbox = Sandbox(state_file=SANDBOX_STATE).start()
            url = self._sandbox.url
            print(f"using the local sandbox (not a real cluster) at {url}, state in {SANDBOX_STATE}",
                  file=sys.stderr)
        client = connect(self.variables.env, url=url)
        self.target = describe_target(self.variables.env, url=url)
        print(f"cluster: {self.target}  stack: {self.stack}", file=sys.stderr)
        return make_context(client, stack=self.stack, options=Options(**options), reporter=Reporter(),
                            environ=self.variables.env)

    def close(self):
        if self._sandbox is not None:
            self._sandbox.stop()


def _sandbox_model():
    from sandbox.demo_model import ensure_demo_model

    path = ensure_demo_model(SANDBOX_MODEL)
    print(f"offline: the sandbox reaches no model hub; SANDBOX_MODEL_PATH={path} is a tiny random-weight "
          "cross-encoder built locally, so reranked orders are NOT meaningful", file=sys.stderr)
    return path


def _run(session_args, body):
    session = _Session(**session_args)
    try:
        return body(session)
    finally:
        session.close()


def _confirm(what):
    def confirm(plan):
        print(f"\nDo you want to {what}? Only 'yes' will be accepted: ", end="", flush=True)
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


def _show(json_output, show_requests=False):
    from provisioning import plan_to_json, render_plan

    def show(plan):
        print(plan_to_json(plan) if json_output else render_plan(plan, color=sys.stdout.isatty(),
                                                                 show_requests=show_requests), end="\n")
    return show


def _plan_body(json_output, detailed_exitcode, footer, out=None, show_requests=False, allow_data_loss=False):
    """plan and status: read-only plan, shown (and saved with --out); exit 2 on changes with --detailed-exitcode."""
    def body(session):
        from invoke import Exit

        from provisioning import make_plan
        from provisioning.planfile import save

        resources = session.resources()
        ctx = session.context(allow_data_loss=allow_data_loss)
        result = make_plan(resources, ctx)
        _show(json_output, show_requests)(result)
        if out:
            save(result, out, target=session.target, folders=session.folders)
            print(f"plan saved to {out}: apply exactly it with `invoke apply --plan {out}`", file=sys.stderr)
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


def _finish(result, what):
    from invoke import Exit

    from provisioning import render_checks

    if result is None:
        raise Exit(f"{what} cancelled; nothing was changed", code=1)
    print(f"{what} complete: {len(result.applied)} changes applied.")
    if result.checks:
        print(render_checks(result.checks))
        if result.checks_failed:
            raise Exit(f"{what} succeeded but {sum(not c.ok for c in result.checks)} checks failed", code=1)


@task(iterable=ITERABLE, help=OFFLINE_HELP)
@_engine_task
def render(c, env=None, var=None, manifests=None):
    """Print the manifests after Jinja rendering (no cluster needed)."""
    from provisioning import render_manifests

    session = _Session(env, var, manifests)
    for file, text in render_manifests(session.manifests, environment=env, variables=session.var,
                                       env_file_dir=ROOT).items():
        print(f"# ---- {file}\n{text.rstrip()}\n")


@task(iterable=ITERABLE, help=OFFLINE_HELP)
@_engine_task
def validate(c, env=None, var=None, manifests=None):
    """Render and validate the manifests; report every problem with file and line (no cluster needed)."""
    resources = _Session(env, var, manifests).resources()
    print(f"{len(resources)} resources valid: " + ", ".join(r.key for r in resources))


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the plan as JSON for machines",
                               "detailed_exitcode": "exit 0 when there are no changes, 2 when there are, 1 on errors",
                               "out": "save the plan to this file; `invoke apply --plan FILE` applies exactly it",
                               "show_requests": "print the requests and steps each change will run",
                               "allow_data_loss": "record in the saved plan that its data loss is accepted"})
@_engine_task
def plan(c, env=None, var=None, manifests=None, stack=None, sandbox=False, json=False, detailed_exitcode=False,
         out=None, show_requests=False, allow_data_loss=False):
    """Show what apply would change (read-only); --out saves it for `invoke apply --plan`."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox),
         _plan_body(json, detailed_exitcode, _lock_note, out, show_requests, allow_data_loss))


@task(iterable=ITERABLE, help={**COMMON_HELP, "yes": "apply without asking (required when not on a terminal)",
                               "parallelism": "independent changes applied at once (default 4)",
                               "allow_data_loss": "allow changes that lose data (deleting documents or an index "
                                                  "that holds them)",
                               "json": "print the plan as JSON", "wait_timeout": "seconds to wait for "
                               "asynchronous work such as model deployments (default 600)",
                               "wait_for": "deployments are ready when fully_allocated (default, as Elastic "
                                           "advises) or started (serving with fewer allocations than the target)",
                               "plan": "apply exactly this saved plan (from `invoke plan --out`); the manifests are "
                                       "not rendered again",
                               "show_requests": "print the requests and steps each change will run",
                               "upload_workers": "model definition parts uploaded at once (default "
                                                 "$ES_STACK_UPLOAD_WORKERS, else 8)"})
@_engine_task
def apply(c, env=None, var=None, manifests=None, stack=None, sandbox=False, yes=False, parallelism=4,
          allow_data_loss=False, json=False, wait_timeout=600, plan=None, show_requests=False,
          wait_for="fully_allocated", upload_workers=None):
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
        if plan:
            from provisioning.planfile import apply_file

            ctx = session.context(**options)
            result = apply_file(plan, ctx, target=session.target,
                                confirm=_guard_interactive(yes, "apply this saved plan"),
                                show=_show(json, show_requests))
        else:
            resources = session.resources()
            ctx = session.context(**options)
            result = converge(resources, ctx, command="invoke apply",
                              confirm=_guard_interactive(yes, "apply these changes"),
                              show=_show(json, show_requests))
        _finish(result, "apply")
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "yes": "destroy without asking (required when not on a terminal)",
                               "parallelism": "independent deletes run at once (default 4)",
                               "allow_data_loss": "allow deleting indices that hold documents",
                               "json": "print the plan as JSON"})
@_engine_task
def destroy(c, env=None, var=None, manifests=None, stack=None, sandbox=False, yes=False, parallelism=4,
            allow_data_loss=False, json=False):
    """Delete everything this stack created, in reverse dependency order (never anything it did not create)."""
    from provisioning import converge

    def body(session):
        resources = session.resources()
        ctx = session.context(parallelism=int(parallelism), allow_data_loss=allow_data_loss)
        result = converge(resources, ctx, command="invoke destroy", destroy=True,
                          confirm=_guard_interactive(yes, "destroy these resources"), show=_show(json))
        _finish(result, "destroy")
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox), body)


@task(iterable=ITERABLE, help=COMMON_HELP)
@_engine_task
def check(c, env=None, var=None, manifests=None, stack=None, sandbox=False):
    """Run every check of the manifests (searches with expectations); exit 1 if one fails."""
    from invoke import Exit

    from provisioning import render_checks, run_checks

    def body(session):
        resources = session.resources()
        results = run_checks(session.context(), resources, manual=True)
        print(render_checks(results) or "no checks declared")
        if any(not r.ok for r in results):
            raise Exit(f"{sum(not r.ok for r in results)} of {len(results)} checks failed", code=1)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the drift as JSON",
                               "detailed_exitcode": "exit 0 when in sync, 2 on drift, 1 on errors"})
@_engine_task
def status(c, env=None, var=None, manifests=None, stack=None, sandbox=False, json=False, detailed_exitcode=False):
    """Drift: what differs between the cluster and the manifests right now, and who holds the lock."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox),
         _plan_body(json, detailed_exitcode, _lock_status))


@task(iterable=ITERABLE, help={**COMMON_HELP, "force": "delete the lock whoever holds it (only when no run is "
                                                       "active: a stale lock left by a killed run)"})
@_engine_task
def unlock(c, env=None, var=None, manifests=None, stack=None, sandbox=False, force=False):
    """Show the stack lock; with --force, break a stale one."""
    from invoke import Exit

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
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox), body)


@task(positional=["query"], iterable=ITERABLE, help={
    **COMMON_HELP, "query": "lexical query text (multi_match over --fields)",
    "index": "index or alias to search (default: movies)",
    "rerank": "rerank the lexical hits against this text with a text_similarity_reranker",
    "inference_id": "rerank endpoint (default: the rerank inference_endpoint of the manifests)",
    "fields": "comma-separated fields: searched, and printed (first = title) (default: title,plot)",
    "rerank_field": "the field the reranker reads (default: plot)",
    "size": "number of hits (default 10)"})
@_engine_task
def search(c, query, env=None, var=None, manifests=None, stack=None, sandbox=False, index="movies", rerank=None,
           inference_id=None, fields="title,plot", rerank_field="plot", size=10):
    """Ad-hoc search: lexical, or reranked semantically with --rerank "text"; prints rank, score, title, plot."""
    from elasticsearch import ApiError

    from provisioning.adhoc import format_hits, rerank_endpoint, search_body
    from provisioning.errors import api_error

    def body(session):
        endpoint = inference_id
        if rerank and not endpoint:
            endpoint = rerank_endpoint(session.resources())
        names = [f.strip() for f in fields.split(",") if f.strip()]
        request = search_body(query, fields=names, rerank=rerank, inference_id=endpoint,
                              rerank_field=rerank_field, size=int(size))
        try:
            response = session.context().client.search(index=index, body=request)
        except ApiError as exc:
            raise api_error(exc, resource=f"search {index}") from exc
        print(format_hits(response.body, names))
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox), body)

