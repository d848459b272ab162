"""Issue 13: the package installed into a fresh virtual environment outside the checkout gives a team the `es-stack`
command; its repository holds only manifests. The venv sees the shared site-packages (a .pth file) for the
dependencies, so only the package itself is built and installed (a few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.cli_helpers import CONNECTION_VARS, ROOT, project


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next(folder.glob("lib/python3*/site-packages"))
    (site / "shared.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = folder / "bin" / "python"
    built = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT)], capture_output=True,
                           text=True, timeout=300, cwd=folder)
    assert built.returncode == 0, built.stdout + built.stderr
    return folder


@pytest.mark.timeout(300)
def test_es_stack_validate_and_apply_in_a_team_repository(venv, tmp_path):
    folder = project(tmp_path / "team")
    environ = {k: v for k, v in os.environ.items() if k not in (*CONNECTION_VARS, "PYTHONPATH",
                                                                "ES_STACK_SANDBOX_STATE")}
    command = str(venv / "bin" / "es-stack")

    def run(*args):
        return subprocess.run([command, *args], cwd=folder, env=environ, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import provisioning; print(provisioning.__file__)"],
                           cwd=folder, env=environ, capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr  # not the checkout
    validated = run("validate")
    assert validated.returncode == 0, validated.stderr
    assert "3 resources valid" in validated.stdout
    applied = run("apply", "--sandbox", "--yes", "--var", "SANDBOX_MODEL_PATH=unused")
    assert applied.returncode == 0, applied.stderr
    assert "apply complete: 2 changes applied." in applied.stdout and "notes-found: passed" in applied.stdout
    assert (folder / ".cache" / "sandbox-state.json").is_file()  # cache and state in the working directory
    helped = run("--help", "apply")
    assert "--lock-timeout" in helped.stdout and "--junit" in helped.stdout

    # the importable collection: a team's own tasks.py adds its tasks to es-stack's
    (folder / "tasks.py").write_text("from invoke import task\nfrom provisioning.cli import namespace\n\n\n"
                                     "@task\ndef hello(c):\n    print('hello')\n\n\nnamespace.add_task(hello)\n")
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "invoke", "--list"], cwd=folder, env=environ,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("apply", "plan", "check", "hello")), listed.stdout
