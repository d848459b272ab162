"""What the tool prints and writes: ONE redaction choke point, colour rules and user-facing error messages.

- `REDACTOR` knows every secret value this process holds (cluster credentials, endpoint secrets, hub tokens: added
  by the CLI session and by Context.secret) and masks each one in every encoding Elasticsearch or a library may
  echo it in: plain, JSON-escaped, URL-encoded and base64 (at every byte alignment, so a secret inside a larger
  base64 blob such as an `ApiKey id:key` header is caught too). Everything the CLI prints (stdout and stderr are
  wrapped while a task runs), every file it writes (--junit, --markdown, --out) and every log record pass through it.
- `use_color`: NO_COLOR (any non-empty value, https://no-color.org) and --no-color win; otherwise colour only on a
  terminal.
- `explain`: an exception as one or two lines naming the cause and what to do (connection, TLS, authentication,
  authorisation, not-Elasticsearch); None for errors that already say so themselves.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "(sensitive value)"
MIN_SECRET = 6  # shorter values would mask ordinary words


def _b64_forms(raw: bytes) -> set[str]:
    forms = set()
    whole = base64.b64encode(raw).decode()
    forms |= {whole, whole.rstrip("=")}
    for shift in (0, 1, 2):  # the part of the encoding fixed by the secret's bytes alone, at each alignment
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = ((shift + 2) // 3) * 4
        end = ((shift + len(raw)) // 3) * 4
        core = encoded[start:end]
        if len(core) >= 8:
            forms.add(core)
        for variant in (base64.urlsafe_b64encode(b"\0" * shift + raw).decode()[start:end],):
            if len(variant) >= 8:
                forms.add(variant)
    return forms


def encodings(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe=""),
             quote_plus(value), quote(value)}
    forms |= _b64_forms(value.encode())
    return {f for f in forms if len(f) >= MIN_SECRET}


class Redactor:
    """Masks known secret values (every encoding of each) in text. Thread-safe; values are never printed."""

    def __init__(self) -> None:
        self._forms: list[str] = []
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        value = (value or "").strip()
        if len(value) < MIN_SECRET or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            forms = set(self._forms) | encodings(value)
            self._forms = sorted(forms, key=len, reverse=True)  # longest first: a form inside another one

    def add_credential(self, value: str | None) -> None:
        """An API key: the value, and the secret half of an `id:key` pair (given as such or base64-encoded)."""
        value = (value or "").strip()
        self.add(value)
        try:
            decoded = base64.b64decode(value, validate=True).decode() if ":" not in value else value
        except Exception:  # not base64: a plain key
            return
        if ":" in decoded:
            self.add(decoded)
            self.add(decoded.split(":", 1)[1])

    @property
    def values(self) -> set[str]:
        return set(self._values)

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str) or not self._forms:
            return text
        for form in list(self._forms):
            if form in text:
                text = text.replace(form, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._forms, self._values = [], set()


REDACTOR = Redactor()
SECRET_NAME_PARTS = ("API_KEY", "APIKEY", "TOKEN", "PASSWORD", "SECRET")


def register_environment_secrets(environ: Any, names: Any = ()) -> None:
    """Secret-looking variables of the environment (…_API_KEY, …TOKEN, …PASSWORD, …SECRET) and the named ones."""
    for name, value in dict(environ).items():
        if isinstance(value, str) and any(part in name.upper() for part in SECRET_NAME_PARTS):
            REDACTOR.add_credential(value)
    for name in names:
        REDACTOR.add_credential(environ.get(name))


class RedactingStream:
    """A text stream whose writes are redacted (stdout/stderr while a task runs)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(REDACTOR(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def use_color(stream: Any, no_color: bool = False, environ: Any = None) -> bool:
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def write_file(path: Any, text: str) -> None:
    """Every file the CLI writes goes through the redactor."""
    from pathlib import Path

    from provisioning.errors import ConfigError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a" if str(path) == os.environ.get("GITHUB_STEP_SUMMARY") else "w",
                  encoding="utf-8") as f:
            f.write(REDACTOR(text))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---- user-facing explanations of connection-level failures ----------------------------------------------------
def _chain(exc: BaseException) -> list[BaseException]:
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        errors = getattr(exc, "errors", None)
        exc = exc.__cause__ or exc.__context__ or (errors[0] if errors else None)
    return out


def explain_transport(exc: BaseException, target: str) -> str:
    """A TransportError (no HTTP answer) as the cause and what to do."""
    text = " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc)).lower()
    name = type(exc).__name__
    if name == "TlsError" or "certificate" in text or "ssl" in text or "tls" in text:
        why = "certificate verify failed" if "verify" in text or "certificate" in text else "TLS handshake failed"
        return (f"TLS error talking to {target} ({why}); for a self-signed or private CA set ELASTICSEARCH_CA_CERT "
                f"to its PEM file (e.g. config/certs/http_ca.crt), or use http:// if the cluster has no TLS")
    if name == "ConnectionTimeout" or "timed out" in text:
        return f"no answer from {target} (timed out); check the URL, the port and any firewall or proxy between"
    if "refused" in text:
        return (f"cannot connect to {target}: connection refused (nothing listens there); check ELASTICSEARCH_URL "
                f"and that Elasticsearch is running")
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"cannot resolve the host of {target}; check ELASTICSEARCH_URL (or ELASTIC_CLOUD_ID)"
    return f"cannot reach Elasticsearch at {target}: {getattr(exc, 'message', exc)}"


def not_elasticsearch(exc: Any) -> bool:
    """An HTTP answer that did not come from Elasticsearch (no X-Elastic-Product header, a non-JSON body)."""
    meta = getattr(exc, "meta", None)
    headers = getattr(meta, "headers", None) or {}
    product = headers.get("X-Elastic-Product") if hasattr(headers, "get") else None
    return product is None and not isinstance(getattr(exc, "body", None), dict)


def explain_api_error(exc: Any, target: str, step: str | None = None) -> str | None:
    """401, 403 and non-Elasticsearch answers as the cause and what to do; None for ordinary ES errors."""
    status = getattr(getattr(exc, "meta", None), "status", None)
    where = f"{step}: " if step else ""
    if not_elasticsearch(exc) and status in (502, 503, 504):
        return (f"{where}{target} answered HTTP {status} from a proxy or load balancer, not from Elasticsearch (the "
                f"cluster may be restarting, scaling or overloaded); try again in a few minutes")
    if type(exc).__name__ == "UnsupportedProductError" or not_elasticsearch(exc):
        return (f"{where}the server at {target} is not Elasticsearch (it answered HTTP {status} without the "
                f"X-Elastic-Product header); check ELASTICSEARCH_URL (host and port of the cluster's HTTP layer)")
    if status == 401:
        return (f"{where}authentication failed at {target} (401): the credentials were refused; check that "
                f"ELASTIC_API_KEY is the base64 'encoded' value of a valid, unexpired key (or the username/password)")
    if status == 403:
        from provisioning.errors import es_reason

        return (f"{where}not authorised (403): {es_reason(exc)}\n  the API key lacks a privilege; see the "
                f"privileges under \"Pointing it at your cluster\" in the README")
    return None
