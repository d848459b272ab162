"""Invoke tasks: each parses options, calls one engine function and maps the outcome to an exit code.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's options.
"""

from __future__ import annotations

from invoke import task


@task(help={
    "port": "port to listen on (default 9200)",
    "state_file": "keep the sandbox's state in this JSON file so it survives a restart",
    "version": "Elasticsearch version reported by GET / (default 9.1.0)",
})
def sandbox(c, port=9200, state_file=None, version=None):
    """Run the local Elasticsearch 9.x stand-in on 127.0.0.1 (for tests and the offline quick start)."""
    from sandbox.server import main

    argv = ["--port", str(port)] + (["--state-file", state_file] if state_file else [])
    main(argv + (["--version", version] if version else []))
