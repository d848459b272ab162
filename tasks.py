"""Invoke tasks of this repository: the es-stack command line (provisioning/cli.py), so that `invoke ...` here and the
installed `es-stack ...` command run the same tasks with the same options and help.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's options. A team's own repository needs no
tasks.py: `es-stack plan`, or `from provisioning.cli import namespace` in its own tasks.py.
"""

from provisioning.cli import (  # noqa: F401 (Invoke collects the Task objects of this module)
    apply,
    check,
    conformance,
    destroy,
    evaluate,
    import_,
    plan,
    render,
    sandbox,
    search,
    stacks,
    status,
    unlock,
    validate,
)
