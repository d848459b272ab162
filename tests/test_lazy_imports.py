"""Heavy imports stay lazy (issue 4): `invoke --list`, render, validate, and a plan whose model is already in place
never import torch, transformers or eland's ML modules. Checked in fresh interpreters with `python -X importtime`,
which lists every module a process imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provisioning import Options, Reporter, converge, load_manifests, make_context
from testbed.tiny_model import build_tiny_cross_encoder

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "eland.ml")
# nothing a plan needs (issue 14): no eland at all, no data-science stack, nothing only apply runs
NOT_IN_A_PLAN = HEAVY + ("eland", "pandas", "matplotlib", "numpy", "sklearn", "huggingface_hub", "tqdm",
                         "provisioning.bulk", "provisioning.model_import.tracing")


def imported_modules(*args: str, env: dict[str, str] | None = None,
                     command: tuple[str, ...] = ("-m", "invoke")) -> tuple[set[str], subprocess.CompletedProcess]:
    process = subprocess.run([sys.executable, "-X", "importtime", *command, *args], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    modules = set()
    for line in process.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip())
    return modules, process


def heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in names))


@pytest.fixture
def manifests(tmp_path):
    model = build_tiny_cross_encoder(tmp_path / "tiny")
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "model.yaml").write_text(textwrap.dedent(f"""\
        kind: trained_model
        name: lazy-model
        spec:
          task_type: text_similarity
          source: {{path: {model}}}
        ---
        kind: inference_endpoint
        name: lazy-rerank
        spec:
          task_type: rerank
          service: elasticsearch
          service_settings: {{model_id: lazy-model, num_allocations: 1, num_threads: 1}}
        """))
    return directory


def test_list_render_validate_do_not_import_torch(manifests):
    for args in (["--list"], ["render", "--manifests", str(manifests)], ["validate", "--manifests", str(manifests)]):
        modules, process = imported_modules(*args)
        assert process.returncode == 0, process.stderr[-2000:]
        assert "invoke" in modules  # the measurement works
        assert heavy(modules) == [], f"invoke {' '.join(args)} imported {heavy(modules)[:5]}"


def test_no_op_plan_with_the_model_in_place_does_not_import_torch(es, sandbox, manifests, tmp_path):
    resources = load_manifests(manifests)
    ctx = make_context(es, stack="lazy", options=Options(cache_dir=tmp_path / "cache", wait_timeout=60),
                       reporter=Reporter(quiet=True))
    converge(resources, ctx, command="test apply")  # in this process: traces and uploads (imports torch here)

    env = {"ELASTICSEARCH_URL": sandbox.url, "ES_STACK_NAME": "lazy"}
    modules, process = imported_modules("plan", "--manifests", str(manifests), "--stack", "lazy",
                                        "--detailed-exitcode", env=env)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]  # 0: no changes
    assert "provisioning.kinds.trained_model" in modules and "elasticsearch" in modules
    assert heavy(modules, NOT_IN_A_PLAN) == [], f"a no-op plan imported {heavy(modules, NOT_IN_A_PLAN)[:5]}"

    # a plan that has to create the model still only plans: tracing waits for apply
    sandbox.reset()
    modules, process = imported_modules("plan", "--manifests", str(manifests), "--stack", "lazy", env=env)
    assert process.returncode == 0, process.stderr[-2000:]
    assert heavy(modules, NOT_IN_A_PLAN) == []


def test_the_measurement_sees_heavy_imports():
    modules, process = imported_modules(command=("-c", "import provisioning.model_import.tracing as t; "
                                                       "import eland.ml.pytorch.transformers"))
    assert process.returncode == 0, process.stderr[-2000:]
    assert {"torch", "transformers", "eland.ml.pytorch.transformers"} <= set(heavy(modules))
