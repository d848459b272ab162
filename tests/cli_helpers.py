"""Running the es-stack command line as a pipeline does: a subprocess in a project folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTION_VARS = ("ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ELASTICSEARCH_URL", "ELASTICSEARCH_USERNAME",
                   "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_CA_CERT", "ES_STACK_NAME", "NO_COLOR")

NOTES_INDEX = """\
kind: index
name: {{ INDEX | default('notes') }}
spec:
  settings: {number_of_shards: 1, number_of_replicas: 0}
  mappings: {properties: {id: {type: keyword}, title: {type: text}, body: {type: text}}}
"""
NOTES_DOCS = """\
kind: documents
name: notes-seed
spec:
  index: {{ INDEX | default('notes') }}
  source: data/notes.json
  id_field: id
"""
NOTES_CHECK = """\
kind: check
name: notes-found
depends_on: [documents/notes-seed]
spec:
  index: {{ INDEX | default('notes') }}
  request: {query: {match: {body: hello}}}
  expect: {min_hits: 1}
"""
NOTES = '[{"id": "1", "title": "first", "body": "hello world"}, {"id": "2", "title": "second", "body": "bye"}]'


def project(folder: Path, *, extra: dict[str, str] | None = None) -> Path:
    """A team's repository: manifests (an index, its documents, a check) and nothing of this project."""
    manifests = folder / "manifests"
    (manifests / "data").mkdir(parents=True)
    (manifests / "10-index.yaml.j2").write_text(NOTES_INDEX)
    (manifests / "20-docs.yaml.j2").write_text(NOTES_DOCS)
    (manifests / "30-check.yaml.j2").write_text(NOTES_CHECK)
    (manifests / "data" / "notes.json").write_text(NOTES)
    for name, text in (extra or {}).items():
        (manifests / name).write_text(text)
    return folder


def run(args, *, cwd, env=None, timeout=120, command=None, **kwargs):
    """`es-stack ARGS` (python -m provisioning.cli, the console command's code) in `cwd`, without a terminal."""
    environ = {k: v for k, v in os.environ.items() if k not in CONNECTION_VARS}
    environ["PYTHONPATH"] = str(ROOT)
    environ["ES_STACK_SANDBOX_STATE"] = str(Path(cwd) / ".cache" / "sandbox-state.json")
    environ.update(env or {})
    command = command or [sys.executable, "-m", "provisioning.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)


SANDBOX = ["--sandbox", "--stack", "t", "--var", "SANDBOX_MODEL_PATH=unused"]
