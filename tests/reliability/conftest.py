"""Fixtures of the reliability tests: one tiny multi-part cross-encoder and one traced-artifact cache per session,
a sandbox that can kill a run at a chosen request, and the example stack wired to both."""

from __future__ import annotations

import pytest

from testbed.example_stack import MULTI_PART_VOCAB, ExampleStack, KillableSandbox, clear_stack_variables


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from testbed.tiny_model import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("reliability-model") / "tiny-cross-encoder",
                                    vocab_size=MULTI_PART_VOCAB)


@pytest.fixture(scope="session")
def traced_artifacts(tmp_path_factory):
    """The engine's artifact cache (`<cache_dir>/models`), shared so the tiny model is traced once per session."""
    return tmp_path_factory.mktemp("reliability-artifacts")


@pytest.fixture(scope="session")
def killable_server():
    server = KillableSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def ksb(killable_server):
    """The killable sandbox, empty, with no faults and no kill armed."""
    killable_server.reset()
    yield killable_server
    killable_server.reset()


@pytest.fixture
def stack(tiny_model_dir, traced_artifacts, tmp_path, monkeypatch):
    clear_stack_variables(monkeypatch)
    workdir = tmp_path / "work"
    workdir.mkdir()
    return ExampleStack(model_path=tiny_model_dir, artifacts=traced_artifacts, workdir=workdir)
