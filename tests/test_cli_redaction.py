"""Issue 13: the one redaction choke point masks every encoding of a secret the tool holds."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from provisioning.output import MASK, Redactor

SECRET = "sk-Secr3t/+=&\"x y"


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc"])
def test_every_encoding_is_masked(prefix):
    redact = Redactor()
    redact.add(SECRET)
    texts = [f"reason [{{api_key={SECRET}}}]", json.dumps({"reason": f"key {SECRET}"}),
             f"/path?key={quote(SECRET, safe='')}", f"q={quote_plus(SECRET)}",
             "Authorization: ApiKey " + base64.b64encode(f"{prefix}id:{SECRET}".encode()).decode(),
             base64.urlsafe_b64encode(f"{prefix}{SECRET}tail".encode()).decode()]
    for text in texts:
        masked = redact(text)
        assert SECRET not in masked and quote(SECRET, safe="") not in masked
        assert MASK in masked, text


def test_an_api_key_in_encoded_form_masks_its_secret_half():
    redact = Redactor()
    redact.add_credential(base64.b64encode(b"key-id:the-secret-half-123").decode())
    assert redact("refused key the-secret-half-123") == f"refused key {MASK}"
    assert redact("key-id") == "key-id"  # the id is not a secret


def test_short_values_and_ordinary_text_are_left_alone():
    redact = Redactor()
    redact.add("abc")
    redact.add("the-real-secret")
    assert redact("abc and the-real-secret") == f"abc and {MASK}"
