"""The Elasticsearch client, configured from the environment (after .env is loaded), with the client's own retries.

Elastic Cloud: ELASTIC_CLOUD_ID + ELASTIC_API_KEY (the tutorial's names). Self-managed: ELASTICSEARCH_URL with
ELASTIC_API_KEY or ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD, optionally ELASTICSEARCH_CA_CERT.
There is deliberately no fallback to a local sandbox: a pipeline must never "succeed" against a throwaway cluster
(tasks.py starts one only when `--sandbox` is given, and says so).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from provisioning import compat
from provisioning.errors import ConfigError

# Throttling and transient gateway errors are retried, with exponential backoff and jitter, within a total deadline.
RETRY_ON_STATUS = (429, 502, 503, 504)
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
RETRY_BACKOFF_BASE = 0.5  # seconds: the first pause is 0.25-0.5 s, then each one doubles ...
RETRY_BACKOFF_CAP = 10.0  # ... up to 5-10 s
# Kept-alive connections per node: the model upload's 16 workers and the vocabulary, beside the concurrent changes
# (--parallelism 4) and bulk workers. With the client's default of 10, requests beyond it open connections that
# urllib3 then discards, a new TCP (and TLS) handshake each time.
CONNECTIONS_PER_NODE = 32
RETRY_DEADLINE = 90.0  # a request is not retried once its next pause would end later than this after it started

_log = logging.getLogger(__name__)


def backoff(attempt: int, base: float = RETRY_BACKOFF_BASE, cap: float = RETRY_BACKOFF_CAP) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random), the formula elastic-transport uses
    between connection-error retries (elastic_transport/_transport.py backoff_time)."""
    half = min(cap, base * 2 ** (attempt - 1)) / 2
    return half + random.uniform(0, half)


class RetryingElasticsearch(Elasticsearch):
    """The client, pausing before it retries a 429/502/503/504 answer.

    Connection errors and timeouts are retried by the transport itself, with its own backoff (retry_backoff_base /
    retry_backoff_cap). Status retries are done here instead: elastic-transport 9.x retries `retry_on_status`
    answers immediately, without any pause (elastic_transport/_transport.py perform_request; open issue
    elastic/elastic-transport-python#197), which hammers a cluster that is shedding load. `options()` keeps this
    class (it builds `type(self)`), so `client.options(max_retries=0)` disables these retries too.
    """

    def perform_request(self, method: str, path: str, **kwargs: Any) -> Any:
        retries = self._max_retries if isinstance(self._max_retries, int) else DEFAULT_MAX_RETRIES
        deadline = time.monotonic() + RETRY_DEADLINE
        attempt = 0
        while True:
            try:
                return super().perform_request(method, path, **kwargs)
            except ApiError as exc:
                attempt += 1
                pause = backoff(attempt)
                if exc.meta.status not in RETRY_ON_STATUS or attempt > retries \
                        or time.monotonic() + pause > deadline:
                    raise
                _log.warning("%s %s answered %s; retrying in %.1fs (retry %d of %d)", method, path.split("?")[0],
                             exc.meta.status, pause, attempt, retries)
                time.sleep(pause)


HOW_TO_CONFIGURE = (
    "set ELASTIC_CLOUD_ID and ELASTIC_API_KEY (Elastic Cloud), or ELASTICSEARCH_URL with ELASTIC_API_KEY or "
    "ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD (self-managed; ELASTICSEARCH_CA_CERT for a private CA), "
    "in the environment or in .env; or run the task with --sandbox to use a local stand-in"
)


def client_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for elasticsearch.Elasticsearch from the environment. Raises ConfigError naming
    the variables to set (never their values)."""
    env = os.environ if environ is None else environ
    get = lambda name: (env.get(name) or "").strip()  # noqa: E731
    cloud_id, url = get("ELASTIC_CLOUD_ID"), get("ELASTICSEARCH_URL")
    api_key = get("ELASTIC_API_KEY")
    user, password = get("ELASTICSEARCH_USERNAME"), get("ELASTICSEARCH_PASSWORD")
    if cloud_id and url:
        raise ConfigError("both ELASTIC_CLOUD_ID and ELASTICSEARCH_URL are set; set only one of them")
    if not cloud_id and not url:
        raise ConfigError(f"no Elasticsearch cluster is configured: {HOW_TO_CONFIGURE}")
    if url:
        _check_url(url)
    options: dict[str, Any] = {"cloud_id": cloud_id} if cloud_id else {"hosts": [url]}
    if api_key:
        # the encoded form (base64, as Kibana shows it) or "id:api_key" (base64 never contains ':')
        options["api_key"] = tuple(api_key.split(":", 1)) if ":" in api_key else api_key
    elif user or password:
        if not (user and password):
            missing = "ELASTICSEARCH_PASSWORD" if user else "ELASTICSEARCH_USERNAME"
            raise ConfigError(f"{missing} is not set (basic authentication needs both username and password)")
        options["basic_auth"] = (user, password)
    elif cloud_id:
        raise ConfigError("ELASTIC_CLOUD_ID is set but ELASTIC_API_KEY is not: Elastic Cloud needs an API key")
    ca_cert = get("ELASTICSEARCH_CA_CERT")
    if ca_cert:
        if not Path(ca_cert).is_file():
            raise ConfigError(f"ELASTICSEARCH_CA_CERT points to {ca_cert}, which is not a file")
        options["ca_certs"] = ca_cert
    return options


def _check_url(url: str) -> None:
    from urllib.parse import urlsplit

    shown = describe_target({"ELASTICSEARCH_URL": url})
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"ELASTICSEARCH_URL={shown!r} is not a URL with a scheme: write it as https://host:9200 "
                          f"(or http:// for a cluster without TLS)")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ConfigError(f"ELASTICSEARCH_URL={shown!r} has an invalid port; write it as https://host:9200") from None


def _check_cloud_id(cloud_id: str) -> None:
    import base64
    import binascii

    name, sep, encoded = cloud_id.partition(":")
    try:
        parts = base64.b64decode(encoded.encode(), validate=False).decode().split("$") if sep else []
    except (binascii.Error, UnicodeDecodeError):
        parts = []
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigError("ELASTIC_CLOUD_ID is malformed (expected `name:base64...` as shown on the deployment's page "
                          "in Elastic Cloud, under \"Cloud ID\"); copy it again, whole")


def check_reachable(client: Any, timeout: float = 3.0) -> None:
    """Fail fast, naming the URL, when nothing listens where the client will connect (instead of the client's
    retries on a refused connection). A plain TCP connection: no request, no privilege needed."""
    import socket

    for node in client.transport.node_pool.all():
        config = node.config
        target = f"{config.scheme}://{config.host}:{config.port}"
        try:
            connection = socket.create_connection((config.host, config.port), timeout=timeout)
            with connection:
                if config.scheme == "https":
                    _check_tls(connection, config, target, timeout)
        except ConnectionRefusedError:
            raise ConfigError(f"cannot connect to {target}: connection refused (nothing listens there); check "
                              f"ELASTICSEARCH_URL (or ELASTIC_CLOUD_ID) and that Elasticsearch is running") from None
        except socket.gaierror:
            raise ConfigError(f"cannot resolve the host of {target}; check ELASTICSEARCH_URL (or "
                              f"ELASTIC_CLOUD_ID)") from None
        except TimeoutError:
            raise ConfigError(f"no answer from {target} within {timeout:.0f}s; check the URL, the port and any "
                              f"firewall or proxy in between") from None
        except OSError as exc:
            raise ConfigError(f"cannot connect to {target}: {exc.strerror or exc}") from None


def _check_tls(connection: Any, config: Any, target: str, timeout: float) -> None:
    """The TLS handshake the client will make, once, without retries: a certificate problem is not transient."""
    import ssl

    context = config.ssl_context or ssl.create_default_context(cafile=config.ca_certs or None)
    if not config.verify_certs:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection.settimeout(timeout)
    try:
        context.wrap_socket(connection, server_hostname=config.host).close()
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(f"TLS error talking to {target}: certificate verify failed ({exc.verify_message}); for a "
                          f"self-signed or private CA set ELASTICSEARCH_CA_CERT to its PEM file (e.g. "
                          f"config/certs/http_ca.crt)") from None
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS error talking to {target}: handshake failed ({exc.reason or exc}); if the cluster "
                          f"has no TLS, use http:// in ELASTICSEARCH_URL") from None


def connect(environ: Mapping[str, str] | None = None, *, url: str | None = None,
            request_timeout: float = DEFAULT_TIMEOUT, max_retries: int = DEFAULT_MAX_RETRIES) -> Any:
    """An Elasticsearch client. `url` (used by tasks.py --sandbox) overrides the environment's cluster."""
    options = {"hosts": [url]} if url else client_options(environ)
    if "cloud_id" in options:
        _check_cloud_id(options["cloud_id"])
    # retry_on_status=(): the transport must not retry statuses itself (immediately); RetryingElasticsearch does.
    # node_class: REST compatibility negotiated with the cluster's major version on first contact (8.x or 9.x).
    try:
        return RetryingElasticsearch(**options, request_timeout=request_timeout, max_retries=max_retries,
                                     retry_on_status=(), retry_on_timeout=True,
                                     retry_backoff_base=RETRY_BACKOFF_BASE, retry_backoff_cap=RETRY_BACKOFF_CAP,
                                     node_class=compat.node_class(), connections_per_node=CONNECTIONS_PER_NODE)
    except ValueError as exc:  # the client's own checks of a URL or Cloud ID; never shows credentials
        which = "ELASTIC_CLOUD_ID" if "cloud_id" in options else "ELASTICSEARCH_URL"
        raise ConfigError(f"{which} is not valid ({exc}); see .env.example for its form") from None


def describe_target(environ: Mapping[str, str] | None = None, *, url: str | None = None) -> str:
    """Where we connect, for messages: the URL or the cloud deployment name, never a credential."""
    if url:
        return url
    env = os.environ if environ is None else environ
    if env.get("ELASTIC_CLOUD_ID"):
        return f"Elastic Cloud deployment {env['ELASTIC_CLOUD_ID'].split(':', 1)[0]}"
    raw = env.get("ELASTICSEARCH_URL", "")
    # strip user:password@ if someone put credentials in the URL
    scheme, sep, rest = raw.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else raw.rpartition("@")[2]
