"""Invoke tasks: each parses options, calls one engine function and maps the outcome to an exit code.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's options.
"""

from __future__ import annotations

from invoke import task


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
    from invoke import Exit

    from conformance.runner import execute

    raise Exit(code=execute(folder, url, verbose=verbose, name_filter=name, es_version=es_version))


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
    "es_version": "with --sandbox: the Elasticsearch version the sandbox runs as, 8.19.x or 9.x (default 9.1.0)",
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

    def __init__(self, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None):
        from provisioning.variables import load_variables

        self.env, self.var = env, list(var or [])
        if sandbox and not any(v.startswith("SANDBOX_MODEL_PATH=") for v in self.var):
            self.var.append(f"SANDBOX_MODEL_PATH={_sandbox_model()}")
        self.manifests = Path(manifests or "manifests")
        self.variables = load_variables(ROOT, env, self.var)
        self.stack = stack or self.variables.env.get("ES_STACK_NAME") or "default"
        self.use_sandbox = sandbox
        self.es_version = es_version
        if es_version and not sandbox:
            from provisioning.errors import ConfigError

            raise ConfigError("--es-version chooses the sandbox's Elasticsearch version: use it with --sandbox")
        self._sandbox = None
        self.target = None
        # what a saved plan's reviewer read: the manifests and the templates they import
        self.folders = [self.manifests, ROOT / "templates"]

    def resources(self):
        from provisioning import load_manifests

        return load_manifests(self.manifests, environment=self.env, variables=self.var, env_file_dir=ROOT,
                              stack=self.stack)

    def context(self, **options):
        """A context on the cluster (or a fresh in-process sandbox); its ledger is read by the first plan."""
        from provisioning import Options, Reporter, connect, describe_target, make_context

        url = None
        if self.use_sandbox:
            import logging

            from sandbox.server import Sandbox

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log in task output
            from sandbox.cluster import DEFAULT_VERSION
            from sandbox.versions import check_supported

            SANDBOX_STATE.parent.mkdir(parents=True, exist_ok=True)
            version = self.es_version or DEFAULT_VERSION
            check_supported(version)
            # one state file per version: an 8.19 sandbox and a 9.x one are two different clusters
            state = SANDBOX_STATE if not self.es_version else SANDBOX_STATE.with_name(
                f"{SANDBOX_STATE.stem}-{version}{SANDBOX_STATE.suffix}")
            self._sandbox = Sandbox(version=version, state_file=state).start()
            url = self._sandbox.url
            print(f"using the local sandbox (not a real cluster, Elasticsearch {version}) at {url}, state in "
                  f"{state}", file=sys.stderr)
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


def _finish(result, what, after=None):
    """`after(result)`: more post-apply assertions (the evaluations), run after the checks; returns failures."""
    from invoke import Exit

    from provisioning import render_checks

    if result is None:
        raise Exit(f"{what} cancelled; nothing was changed", code=1)
    print(f"{what} complete: {len(result.applied)} changes applied.")
    if result.checks:
        print(render_checks(result.checks))
    failed = after(result) if after else 0
    if result.checks and result.checks_failed:
        raise Exit(f"{what} succeeded but {sum(not c.ok for c in result.checks)} checks failed", code=1)
    if failed:
        raise Exit(f"{what} succeeded but {failed} evaluations failed their relevance gates", code=1)


def _evaluate_after_apply(ctx):
    """Run the evaluations declared with run: after_apply (the resources of the plan applied); print their table."""
    def after(result):
        from provisioning.evaluation.report import render_text
        from provisioning.evaluation.run import run_evaluations

        if result.plan is None or result.plan.destroy:
            return 0
        results = run_evaluations(ctx, result.plan.resources)
        if results:
            print(render_text(results))
        return sum(not r.ok for r in results)
    return after


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
def plan(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, json=False,
         detailed_exitcode=False,
         out=None, show_requests=False, allow_data_loss=False):
    """Show what apply would change (read-only); --out saves it for `invoke apply --plan`."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version),
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
                               "show_requests": "print the requests and steps each change will run"})
@_engine_task
def apply(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, yes=False,
          parallelism=4,
          allow_data_loss=False, json=False, wait_timeout=600, plan=None, show_requests=False,
          wait_for="fully_allocated"):
    """Converge the cluster to the manifests: plan, confirm, apply exactly that plan, verify, run checks."""
    from provisioning import converge

    def body(session):
        from provisioning import ConfigError
        from provisioning.model_import.deployment import WAIT_FOR

        if wait_for not in WAIT_FOR:
            raise ConfigError(f"--wait-for must be one of {', '.join(WAIT_FOR)}, not {wait_for!r}")
        options = dict(parallelism=int(parallelism), allow_data_loss=allow_data_loss,
                       wait_timeout=float(wait_timeout), wait_for=wait_for)
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
        _finish(result, "apply", after=_evaluate_after_apply(ctx))
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "yes": "destroy without asking (required when not on a terminal)",
                               "parallelism": "independent deletes run at once (default 4)",
                               "allow_data_loss": "allow deleting indices that hold documents",
                               "json": "print the plan as JSON"})
@_engine_task
def destroy(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, yes=False,
            parallelism=4,
            allow_data_loss=False, json=False):
    """Delete everything this stack created, in reverse dependency order (never anything it did not create)."""
    from provisioning import converge

    def body(session):
        resources = session.resources()
        ctx = session.context(parallelism=int(parallelism), allow_data_loss=allow_data_loss)
        result = converge(resources, ctx, command="invoke destroy", destroy=True,
                          confirm=_guard_interactive(yes, "destroy these resources"), show=_show(json))
        _finish(result, "destroy")
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help=COMMON_HELP)
@_engine_task
def check(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None):
    """Run every check of the manifests (searches with expectations); exit 1 if one fails."""
    from invoke import Exit

    from provisioning import render_checks, run_checks

    def body(session):
        resources = session.resources()
        results = run_checks(session.context(), resources, manual=True)
        print(render_checks(results) or "no checks declared")
        if any(not r.ok for r in results):
            raise Exit(f"{sum(not r.ok for r in results)} of {len(results)} checks failed", code=1)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(auto_shortflags=False, help={
    **COMMON_HELP, "json": "print the results as one JSON document (nothing else on stdout)",
    "junit": "also write JUnit XML to FILE (a testsuite per evaluation, a testcase per gate and baseline check)",
    "markdown": "also write a Markdown report to FILE", "html": "also write a self-contained HTML page to FILE",
    "save_baseline": "save the scores to FILE as the accepted baseline",
    "compare": "compare with the baseline FILE: fail when a metric dropped by more than the tolerance",
    "tolerance": "allowed drop below the baseline (default: the evaluation's baseline_tolerance, else 0.01)",
    "method": "auto (default: _rank_eval, else _msearch), rank_eval or msearch",
    "name": "only this evaluation (repeatable)"}, iterable=ITERABLE + ["name"])
@_engine_task
def evaluate(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, json=False,
             junit=None, markdown=None, html=None, save_baseline=None, compare=None, tolerance=None, method=None,
             name=None):
    """Run the relevance evaluations of the manifests; exit 1 when a gate fails or a metric regressed."""
    from invoke import Exit

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
        print(report.to_json(results) if json else report.render_text(results))
        for path, render in ((junit, report.to_junit), (markdown, report.to_markdown), (html, report.to_html)):
            if path:
                Path(path).write_text(render(results), encoding="utf-8")
                print(f"wrote {path}", file=sys.stderr)
        if save_baseline:
            write_baseline(results, save_baseline)
            print(f"baseline saved to {save_baseline}", file=sys.stderr)
        failed = [r for r in results if not r.ok]
        if failed:
            raise Exit(f"{len(failed)} of {len(results)} evaluations failed: "
                       + ", ".join(r.name for r in failed), code=1)
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(iterable=ITERABLE, help={**COMMON_HELP, "json": "print the drift as JSON",
                               "detailed_exitcode": "exit 0 when in sync, 2 on drift, 1 on errors"})
@_engine_task
def status(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, json=False,
           detailed_exitcode=False):
    """Drift: what differs between the cluster and the manifests right now, and who holds the lock."""
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version),
         _plan_body(json, detailed_exitcode, _lock_status))


@task(iterable=ITERABLE, help={**COMMON_HELP, "force": "delete the lock whoever holds it (only when no run is "
                                                       "active: a stale lock left by a killed run)"})
@_engine_task
def unlock(c, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, force=False):
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
    _run(dict(env=env, var=var, manifests=manifests, stack=stack, sandbox=sandbox, es_version=es_version), body)


@task(positional=["query"], iterable=ITERABLE, help={
    **COMMON_HELP, "query": "lexical query text (multi_match over --fields)",
    "index": "index or alias to search (default: movies)",
    "rerank": "rerank the lexical hits against this text with a text_similarity_reranker",
    "inference_id": "rerank endpoint (default: the rerank inference_endpoint of the manifests)",
    "fields": "comma-separated fields: searched, and printed (first = title) (default: title,plot)",
    "rerank_field": "the field the reranker reads (default: plot)",
    "size": "number of hits (default 10)"})
@_engine_task
def search(c, query, env=None, var=None, manifests=None, stack=None, sandbox=False, es_version=None, index="movies",
           rerank=None,
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
            print(f"left out {line}", file=sys.stderr)
        print(f"{len(written)} manifests written to {out}; review them (a model's source may be a guess), then "
              f"`invoke plan --manifests {out}`" + ("" if adopt else " (add `adopt: true` to adopt an object)"))
    _run(dict(env=env, var=var, sandbox=sandbox), body)


@task(iterable=ITERABLE, help={**{k: COMMON_HELP[k] for k in ("env", "var", "sandbox")},
                               "json": "print the stacks as JSON"})
@_engine_task
def stacks(c, env=None, var=None, sandbox=False, json=False):
    """List the stacks the cluster's ledger records: resources per kind, adopted ones, who holds each lock."""
    import json as jsonlib

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
