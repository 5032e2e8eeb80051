"""Every form a key or a proxy password can take in text is removed, and only those.

Pure: the forms are built here the way other software would build them (urllib, json, base64),
not from the module under test, so a form the module forgot fails here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import quote, quote_plus

import pytest

from epos_bridge.protocol.redaction import (
    REDACTED,
    KnownSecrets,
    Redactor,
    child_environment,
    proxy_secrets,
    redact,
)

KEY = "sk_prod_fake_4f9a2c7d1e8b6a5f3c2d1e0f9a8b"
ODD_KEY = 'sk_sandbox_fake/with+odd"chars&=%é'
PROXY = "http://till-7:p%40ss%2Fw0rd-fake!@proxy.venue.example:3128"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms_of(key: str) -> dict[str, str]:
    return {
        "as is": key,
        "url-encoded": quote(key, safe=""),
        "url-encoded (path)": quote(key),
        "form-encoded": quote_plus(key),
        "url-encoded, lower-case hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(key, safe="")),
        "JSON-escaped": json.dumps(key)[1:-1],
        "JSON-escaped, non-ASCII kept": json.dumps(key, ensure_ascii=False)[1:-1],
        "JSON-escaped, slash escaped": json.dumps(key)[1:-1].replace("/", "\\/"),
        "base64": b64(key),
        "base64, no padding": b64(key).rstrip("="),
        "url-safe base64": base64.urlsafe_b64encode(key.encode()).decode(),
        "base64 of Basic <key>": b64(f"Basic {key}"),
        "base64 of Basic <key>, no padding": b64(f"Basic {key}").rstrip("="),
    }


@pytest.mark.parametrize("key", [KEY, ODD_KEY])
def test_every_form_of_a_key_is_redacted_inside_ordinary_text(key: str) -> None:
    redactor = Redactor([key])
    for name, form in forms_of(key).items():
        text = f'GET /x?key={form}&n=1 {{"Authorization": "{form}"}} end'
        cleaned = redactor.redact(text)
        assert form not in cleaned, name
        assert REDACTED in cleaned, name
        assert cleaned.endswith(" end"), name


def test_the_key_inside_a_longer_base64_text_is_redacted_at_every_alignment() -> None:
    redactor = Redactor([KEY])
    for prefix in ("", "u:", "user:", "Bearer x "):
        encoded = b64(prefix + KEY + "|trailer")
        cleaned = redactor.redact(f"Proxy-Authorization: Basic {encoded}")
        # At most the few characters a base64 group shares with the neighbouring bytes survive.
        assert REDACTED in cleaned
        left = cleaned.split("Basic ", 1)[1].replace(REDACTED, "")
        assert len(left) <= len(b64(prefix)) + 4 + len(b64("|trailer")) + 4


@pytest.mark.parametrize("length", [12, 13, 20, len(KEY) - 1])
def test_a_run_of_twelve_or_more_leading_characters_is_redacted(length: int) -> None:
    text = f"key starts {KEY[:length]}… (truncated)"

    cleaned = redact(text, KEY)

    assert cleaned == f"key starts {REDACTED}… (truncated)"


def test_eleven_leading_characters_are_not_a_secret() -> None:
    """sk_sandbox_ / sk_prod_ prefixes say which environment, and must stay readable."""
    text = f"the key {KEY[:11]} is a production key"

    assert redact(text, KEY) == text


def test_ordinary_text_is_left_alone() -> None:
    text = "gateway connected (attempt 3) to wss://eu.ws.dojo.tech/epos; 1234 requests, £40.00 paid"

    assert redact(text, KEY, "sk_sandbox_fake_other_0123456789") == text


def test_short_strings_are_not_secrets() -> None:
    assert redact("a b c", "abc") == "a b c"
    assert Redactor(["abc", None, ""]).secrets == frozenset()


def test_a_proxy_password_gets_the_same_treatment() -> None:
    secrets = proxy_secrets(PROXY)
    redactor = Redactor(secrets)

    assert "p@ss/w0rd-fake!" in secrets and "p%40ss%2Fw0rd-fake!" in secrets
    for text in (
        PROXY,
        "password p@ss/w0rd-fake!",
        f"Proxy-Authorization: Basic {b64('till-7:p@ss/w0rd-fake!')}",
        json.dumps({"proxy_password": "p@ss/w0rd-fake!"}),
    ):
        cleaned = redactor.redact(text)
        assert "w0rd-fake" not in cleaned and "p@ss" not in cleaned, text
        assert "d0cmQtZmFrZS" not in cleaned  # base64 core of the password
    assert proxy_secrets("http://proxy.local:3128") == []
    assert proxy_secrets(None) == []


def test_known_secrets_remember_old_keys_and_are_shared() -> None:
    known = KnownSecrets(["sk_sandbox_fake_first_key_0001"])
    redactor_before = known.redactor

    known.add("sk_sandbox_fake_second_key_002", None)

    assert known.redact("sk_sandbox_fake_first_key_0001 / sk_sandbox_fake_second_key_002") == f"{REDACTED} / {REDACTED}"
    assert redactor_before.redact("sk_sandbox_fake_second_key_002") != REDACTED  # a new Redactor, not a mutated one


def test_known_secrets_can_be_added_from_threads_while_read() -> None:
    known = KnownSecrets()
    keys = [f"sk_sandbox_fake_thread_{n:04d}_key" for n in range(40)]
    threads = [threading.Thread(target=known.add, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert known.all() == frozenset(keys)


def test_a_childs_environment_has_no_key_and_no_proxy_password() -> None:
    known = KnownSecrets([KEY, *proxy_secrets(PROXY)])
    environ = {
        "PATH": "/usr/bin",
        "EPOS_BRIDGE_API_KEY": KEY,
        "HTTPS_PROXY": PROXY,
        "http_proxy": PROXY,
        "NO_PROXY": "localhost",
        "SOME_TOOL_TOKEN": b64(f"Basic {KEY}"),
        "LANG": "C.UTF-8",
    }

    child = child_environment(environ, known, drop=["EPOS_BRIDGE_API_KEY"])

    assert child == {
        "PATH": "/usr/bin",
        "HTTPS_PROXY": "http://proxy.venue.example:3128",
        "http_proxy": "http://proxy.venue.example:3128",
        "NO_PROXY": "localhost",
        "LANG": "C.UTF-8",
    }
