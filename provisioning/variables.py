"""Template variables: `.env`, then `.env.<environment>` over it (python-dotenv), under the real process environment;
`--var key=value` wins over all of them. No I/O beyond reading the two dotenv files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from provisioning.errors import ManifestError, Problem

DEFAULT_ENVIRONMENT = "default"


@dataclass
class Variables:
    env: dict[str, str]  # the process environment after .env files (real variables win)
    var: dict[str, str]  # --var key=value
    environment: str = DEFAULT_ENVIRONMENT
    stack: str = "default"  # the stack name (--stack, else ES_STACK_NAME): several stacks can share one cluster

    def context(self) -> dict[str, Any]:
        """What templates see: env and var as top-level names too, --var winning; `env`, `var`, `environment`,
        `stack`."""
        return {**self.env, **self.var, "env": self.env, "var": self.var, "environment": self.environment,
                "stack": self.stack}


def parse_var_options(items: Iterable[str] | None) -> dict[str, str]:
    """`--var key=value` options (repeatable) into a dict; the value may contain '='."""
    result, problems = {}, []
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            problems.append(Problem("--var", None, f"--var {item!r} is not key=value", "write --var NAME=value"))
            continue
        result[key.strip()] = value
    if problems:
        raise ManifestError(problems)
    return result


def load_variables(env_file_dir: str | Path, environment: str | None = None,
                   variables: Mapping[str, str] | Iterable[str] | None = None,
                   stack: str | None = None) -> Variables:
    """dotenv files from `env_file_dir` (.env, then .env.<environment>), the real environment over them, and --var."""
    environment = environment or DEFAULT_ENVIRONMENT
    merged: dict[str, str] = {}
    for name in (".env", f".env.{environment}"):
        path = Path(env_file_dir) / name
        if path.is_file():
            # empty values count as unset (.env.example); a bare `KEY` line gives None in python-dotenv
            merged.update({k: v for k, v in dotenv_values(path).items() if v})
    merged.update({k: v for k, v in os.environ.items() if v})  # the real environment wins over the files
    if variables is None:
        var = {}
    elif isinstance(variables, Mapping):
        var = {str(k): str(v) for k, v in variables.items()}
    else:
        var = parse_var_options(variables)
    # sorted so that a template iterating over env/var renders the same whatever the insertion order
    return Variables(env=dict(sorted(merged.items())), var=dict(sorted(var.items())), environment=environment,
                     stack=stack or merged.get("ES_STACK_NAME") or "default")


def environment_problems(environment: str | None, *folders: str | Path) -> list[Problem]:
    """`--env NAME` must name a declared environment: `.env.NAME` (local values, git-ignored) or a committed
    `.env.NAME.example` (declares it; in CI its values come from real environment variables) in one of `folders`
    (the env file folder, the project root). Otherwise a typo (`--env prodution`) would silently render defaults."""
    if not environment or environment == DEFAULT_ENVIRONMENT:
        return []
    for folder in folders:
        if any((Path(folder) / f".env.{environment}{suffix}").is_file() for suffix in ("", ".example")):
            return []
    declared = sorted({p.name[len(".env."):].removesuffix(".example") for folder in folders
                       for p in Path(folder).glob(".env.*") if p.name != ".env.example"})
    shown = ", ".join(declared) or "none"
    return [Problem(f"--env {environment}", None, f"environment {environment!r} is not declared (no .env.{environment} "
                    f"or .env.{environment}.example)",
                    f"declared environments: {shown}; create .env.{environment} for local values, or commit "
                    f".env.{environment}.example to declare it (values then come from the real environment)")]
