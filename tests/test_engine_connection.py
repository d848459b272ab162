"""Connection configuration from the environment: cloud, URL, auth, CA, retries; no sandbox fallback."""

from __future__ import annotations

import pytest

from provisioning import ConfigError, client_options, connect, describe_target
from provisioning.connection import RETRY_ON_STATUS


def test_cloud_id_and_api_key():
    options = client_options({"ELASTIC_CLOUD_ID": "dep:abc", "ELASTIC_API_KEY": "k"})
    assert options == {"cloud_id": "dep:abc", "api_key": "k"}


def test_api_key_in_id_colon_key_form():
    options = client_options({"ELASTICSEARCH_URL": "https://es:9200", "ELASTIC_API_KEY": "kid:secret"})
    assert options["api_key"] == ("kid", "secret")


def test_url_with_basic_auth_and_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    options = client_options({"ELASTICSEARCH_URL": "https://es:9200", "ELASTICSEARCH_USERNAME": "elastic",
                              "ELASTICSEARCH_PASSWORD": "pw", "ELASTICSEARCH_CA_CERT": str(ca)})
    assert options == {"hosts": ["https://es:9200"], "basic_auth": ("elastic", "pw"), "ca_certs": str(ca)}


@pytest.mark.parametrize("environ, names", [
    ({}, ["ELASTIC_CLOUD_ID", "ELASTIC_API_KEY", "ELASTICSEARCH_URL"]),
    ({"ELASTIC_CLOUD_ID": "dep:abc"}, ["ELASTIC_API_KEY"]),
    ({"ELASTICSEARCH_URL": "http://x", "ELASTICSEARCH_USERNAME": "u"}, ["ELASTICSEARCH_PASSWORD"]),
    ({"ELASTICSEARCH_URL": "http://x", "ELASTIC_CLOUD_ID": "a:b"}, ["only one"]),
    ({"ELASTICSEARCH_URL": "http://x", "ELASTICSEARCH_CA_CERT": "/nope.pem"}, ["ELASTICSEARCH_CA_CERT"]),
])
def test_missing_or_contradictory_configuration_says_what_to_set(environ, names):
    with pytest.raises(ConfigError) as raised:
        client_options(environ)
    for name in names:
        assert name in str(raised.value)


def test_secrets_never_in_errors_or_descriptions():
    with pytest.raises(ConfigError) as raised:
        client_options({"ELASTICSEARCH_URL": "http://x", "ELASTICSEARCH_PASSWORD": "hunter2"})
    assert "hunter2" not in str(raised.value)
    assert describe_target({"ELASTICSEARCH_URL": "https://user:hunter2@es:9200"}) == "https://es:9200"


def test_client_retries_with_its_own_machinery(sandbox):
    sandbox.faults = type(sandbox.faults).from_dict({"rules": [{"path": "^/$", "status": 503, "times": 2}]})
    client = connect({"ELASTICSEARCH_URL": sandbox.url})
    assert client.info()["version"]["number"].startswith("9.")
    assert [e["status"] for e in sandbox.log.entries(0) if e["path"] == "/"] == [503, 503, 200]
    # statuses are retried with a pause by RetryingElasticsearch (the transport would retry them at once);
    # connection errors and timeouts by the transport, with its own backoff
    assert client._retry_on_timeout is True and client._retry_backoff_base > 0 and client._retry_backoff_cap > 0
    assert set(RETRY_ON_STATUS) == {429, 502, 503, 504}
