"""Shared fixtures: a sandbox server on a free port inside the test process, and a real client for it."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from sandbox.server import Sandbox


@pytest.fixture(scope="session")
def sandbox_server():
    server = Sandbox().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """A running sandbox with empty state, an empty request log and no faults."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def es(sandbox):
    """The real Elasticsearch client talking to the sandbox over HTTP."""
    client = Elasticsearch(sandbox.url, request_timeout=60)
    yield client
    client.close()
