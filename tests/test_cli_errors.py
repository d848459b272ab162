"""Issue 13: every connection misconfiguration is a short message naming the cause and what to do, never a
traceback; a refused port fails fast with the URL tried."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time

import pytest

from sandbox.server import Sandbox
from tests.cli_helpers import project, run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def web_server():
    """Something that is not Elasticsearch: `python -m http.server`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def secured_sandbox():
    server = Sandbox(api_keys=("the-right-key-0123456789",)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A TLS server whose self-signed certificate nobody trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    import ssl

    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")], check=True,
                   capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


CASES = {
    # name: (environment, words the message must contain)
    "no scheme": (lambda f: {"ELASTICSEARCH_URL": "localhost:9200"}, ["ELASTICSEARCH_URL", "https://"]),
    "bad cloud id": (lambda f: {"ELASTIC_CLOUD_ID": "my-deployment:bm90LWEtY2xvdWQtaWQ", "ELASTIC_API_KEY": "k" * 20},
                     ["ELASTIC_CLOUD_ID", "malformed"]),
    "refused port": (lambda f: {"ELASTICSEARCH_URL": f"http://127.0.0.1:{f['port']}"},
                     ["connection refused", "http://127.0.0.1:"]),
    "not elasticsearch": (lambda f: {"ELASTICSEARCH_URL": f"http://{f['web']}"},
                          ["not Elasticsearch", "ELASTICSEARCH_URL"]),
    "https to a plain http server": (lambda f: {"ELASTICSEARCH_URL": f"https://{f['web']}"}, ["TLS", "http://"]),
    "wrong key": (lambda f: {"ELASTICSEARCH_URL": f["secured"], "ELASTIC_API_KEY": "the-wrong-key-9876543210"},
                  ["authentication failed", "ELASTIC_API_KEY"]),
    "untrusted certificate": (lambda f: {"ELASTICSEARCH_URL": f["tls"]},
                              ["certificate verify failed", "ELASTICSEARCH_CA_CERT"]),
    "key without privileges": (lambda f: {"ELASTICSEARCH_URL": f["secured"], "ELASTIC_API_KEY": f["weak"]},
                               ["not authorised (403)", "privileges"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_connection_misconfiguration_is_a_short_message_without_traceback(case, tmp_path, request):
    fixtures = {"port": free_port()}
    if case in ("not elasticsearch", "https to a plain http server"):
        fixtures["web"] = request.getfixturevalue("web_server")
    if case in ("wrong key", "key without privileges"):
        secured = request.getfixturevalue("secured_sandbox")
        fixtures["secured"] = secured.url
        if case == "key without privileges":
            from elasticsearch import Elasticsearch

            admin = Elasticsearch(secured.url, api_key="the-right-key-0123456789")
            fixtures["weak"] = admin.security.create_api_key(name="weak", role_descriptors={"none": {}})["encoded"]
    if case == "untrusted certificate":
        fixtures["tls"] = request.getfixturevalue("tls_server")
    environ, words = CASES[case]
    folder = project(tmp_path)
    started = time.monotonic()
    result = run(["plan", "--quiet"], cwd=folder, env=environ(fixtures))
    elapsed = time.monotonic() - started
    message = result.stderr.strip()
    assert result.returncode == 1, message
    assert "Traceback" not in message and "ValueError" not in message, message
    assert len(message.splitlines()) <= 3, message
    for word in words:
        assert word in message, message
    assert "<" not in message  # no HTML of a web server
    assert "the-wrong-key-9876543210" not in message
    if case == "refused port":
        assert elapsed < 3, f"took {elapsed:.1f}s"


def test_debug_shows_the_traceback(tmp_path):
    result = run(["plan", "--debug"], cwd=project(tmp_path), env={"ELASTICSEARCH_URL": "localhost:9200"})
    assert result.returncode == 1 and "Traceback" in result.stderr and "ELASTICSEARCH_URL" in result.stderr
