"""Invoke tasks of this repository: the es-stack command line (provisioning/cli.py), so that `invoke ...` here and the
installed `es-stack ...` command run the same tasks with the same options and help.

Run `invoke --list` for the tasks and `invoke --help TASK` for a task's options. A team's own repository needs no
tasks.py: `es-stack plan`, or `from provisioning.cli import namespace` in its own tasks.py.
"""

import sys

# Invoke stops Python writing bytecode before it loads this file (its --write-pyc flag), so in a checkout (the
# editable install of the quick start) every command compiled the whole provisioning package again: about 70 ms of
# each start-up (issue 14). Cached bytecode is what an installed package has; -B and PYTHONDONTWRITEBYTECODE still win.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)

from provisioning.cli import (  # noqa: E402, F401 (Invoke collects the Task objects of this module)
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
