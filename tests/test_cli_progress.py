"""Issue 13: long steps say what they are doing. Outside a terminal a wait prints a plain line every
$ES_STACK_PROGRESS_INTERVAL seconds (scaled down here: 0.5 s instead of 10 s); on a terminal a bar; nothing with
--quiet. The deployment wait runs against the sandbox with an allocation delay (PUT /_sandbox/pace)."""

from __future__ import annotations

import io
import time

import pytest

from provisioning.context import Reporter
from provisioning.model_import.deployment import wait_ready
from testbed.tiny_model import traced_tiny_cross_encoder
from tests.sandbox.test_ml import MODEL, upload

HEADERS = {"accept": "application/json", "content-type": "application/json"}


@pytest.fixture(scope="module")
def traced():
    return traced_tiny_cross_encoder()


def test_a_deployment_wait_prints_progress_lines_without_a_terminal(es, traced):
    upload(es, traced)
    es.perform_request("PUT", "/_sandbox/pace", body={"allocation_seconds": 0.8}, headers=HEADERS)
    es.ml.start_trained_model_deployment(model_id=MODEL, number_of_allocations=4, wait_for="started")
    stream = io.StringIO()
    started = time.monotonic()
    wait_ready(es, MODEL, MODEL, 30, resource="trained_model/tiny", reporter=Reporter(stream, interval=0.5),
               wait_for="fully_allocated", poll=0.1)
    lines = [line for line in stream.getvalue().splitlines() if "waiting for deployment" in line]
    assert time.monotonic() - started >= 2
    assert len(lines) >= 3, stream.getvalue()
    assert "\x1b" not in stream.getvalue()


def test_progress_handles_print_plain_lines_periodically_and_nothing_when_quiet():
    stream = io.StringIO()
    reporter = Reporter(stream, interval=0.05)
    with reporter.progress("documents/x: indexing", total=4) as progress:
        for _ in range(4):
            time.sleep(0.06)
            progress.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3 and lines[0].startswith("documents/x: indexing: 1 of 4"), lines
    assert lines[-1].endswith("done")
    quiet = io.StringIO()
    with Reporter(quiet, quiet=True, interval=0.01).progress("x", total=2) as progress:
        time.sleep(0.02)
        progress.update(2)
    assert quiet.getvalue() == ""


def test_changes_are_timed_for_the_final_summary():
    stream = io.StringIO()
    reporter = Reporter(stream)
    reporter.change_started("index/a", "create")
    reporter.change_started("index/b", "update")
    reporter.change_finished("index/a", "create")
    assert [k for k, _, _ in reporter.finished] == ["index/a"] and list(reporter.in_flight) == ["index/b"]
    assert "index/a: create done (" in stream.getvalue()
