"""Every form a secret can take in text, and the one place that removes them (logs, errors,
crash reports, diagnostics, child-process environments).

A key leaks in more shapes than its own: percent-encoded in a URL, escaped inside JSON, base64
in a ``Basic`` header some tool decided to encode, or cut short by a message that truncates
(``sk_prod_4f9a2c7d1e…``). So for each secret :func:`secret_forms` lists

* the secret as is;
* URL-encoded (``quote``/``quote_plus``, upper- and lower-case hex);
* JSON-escaped (``json.dumps``, ASCII and not, with ``/`` escaped or not);
* base64 (standard and URL-safe, padded or not) of the secret and of ``Basic <secret>``, and
  the part of the secret's base64 that survives at each of the three byte alignments, so it is
  found inside any longer base64 text (``Basic base64(user:secret)``, a token that embeds it);

and :class:`Redactor` also removes any run of :data:`LEADING_RUN` (12) or more of a secret's
leading characters, however the text goes on after them.

Pure (no I/O): a :class:`Redactor` is built once per set of secrets and reused; a
:class:`KnownSecrets` is the shared, thread-safe set a running bridge adds to when the key changes
in Settings, read by the logging filter, the crash handler and the diagnostics export, so a key is
redacted everywhere from the moment it is known — and an old key stays redacted after a change.

Guests' personal data is the other thing no log line or diagnostics file may hold: a customer's,
a party's or a reservation's name, the customer's email and phone, and the free-text notes of a
booking (contract §4.2, §4.4, §4.5). Those values are not known in advance, so
:func:`redact_personal` removes them by where they sit: the value of a field of that name in any
text a record or report can carry (JSON, JSON inside JSON, a Python ``dict`` or model ``repr``),
and the whole payload of a WebSocket frame as ``websockets`` logs it at DEBUG (cut short in the
middle, so the field's name may be gone while the guest's name is still there). The logging
filter and the diagnostics export both apply it, after the secrets.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote, urlsplit

REDACTED = "«redacted»"
BASIC_PREFIX = "Basic "
"""The Authorization scheme Dojo uses (contract §1.1); ``protocol.dojo`` builds the header with it."""

MIN_SECRET_CHARS = 4
"""Shorter strings are not treated as secrets: redacting them would shred ordinary text."""
LEADING_RUN = 12
"""A run of this many leading characters of a secret is redacted wherever it appears."""
MIN_FRAGMENT_CHARS = 8
"""The shortest base64 fragment (from an unaligned encoding) worth redacting."""


def _b64_forms(data: bytes) -> set[str]:
    standard = base64.b64encode(data).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(data).decode("ascii")
    return {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")}


def _b64_fragments(data: bytes) -> set[str]:
    """The base64 characters that depend on ``data`` alone, for each of the three alignments it
    can have inside a longer byte string: found whatever precedes or follows it."""
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
        start = 4 if offset else 0  # the first group mixes in the unknown bytes before
        end = len(encoded) - (4 if (offset + len(data)) % 3 else 0)  # the last group, those after
        fragment = encoded[start:end]
        if len(fragment) >= MIN_FRAGMENT_CHARS:
            fragments.add(fragment)
            fragments.add(fragment.replace("+", "-").replace("/", "_"))
    return fragments


def secret_forms(secret: str) -> set[str]:
    """Every encoding of ``secret`` this module redacts (the leading-run rule aside)."""
    if len(secret) < MIN_SECRET_CHARS:
        return set()
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    raw = secret.encode("utf-8")
    forms |= _b64_forms(raw)
    forms |= _b64_forms((BASIC_PREFIX + secret).encode("utf-8"))
    forms |= _b64_fragments(raw)
    return forms


def proxy_secrets(proxy_url: str | None) -> list[str]:
    """The credentials in a proxy URL (``http://user:password@host:port``): the password as
    written and decoded, and ``user:password`` (what a ``Proxy-Authorization`` header encodes)."""
    if not proxy_url or "@" not in proxy_url:
        return []
    try:
        parts = urlsplit(proxy_url)
        password = parts.password
        user = parts.username or ""
    except ValueError:
        return []
    if not password:
        return []
    found = [password, unquote(password)]
    found += [f"{unquote(user)}:{unquote(password)}", f"{user}:{password}"]
    return found


class Redactor:
    """Removes every form of a fixed set of secrets. Immutable and safe to share across threads."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets: frozenset[str] = frozenset(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= secret_forms(secret)
        alternatives = [re.escape(form) for form in sorted(forms, key=len, reverse=True)]
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) > LEADING_RUN:
                # The first 12 characters, then as many of the following ones as match.
                rest = secret[LEADING_RUN:]
                tail = "".join(f"(?:{re.escape(ch)}" for ch in rest) + ")?" * len(rest)
                alternatives.append(re.escape(secret[:LEADING_RUN]) + tail)
        self._pattern = re.compile("|".join(alternatives)) if alternatives else None

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def contains_secret(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def __bool__(self) -> bool:
        return bool(self.secrets)


@functools.lru_cache(maxsize=64)
def _redactor_for(secrets: frozenset[str]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, *secrets: str | None) -> str:
    """Remove every form of every secret from ``text`` (logs, errors, diagnostics)."""
    wanted = frozenset(s for s in secrets if s and len(s) >= MIN_SECRET_CHARS)
    if not wanted:
        return text
    return _redactor_for(wanted).redact(text)


class KnownSecrets:
    """The secrets a running bridge has met (API keys, old and new; proxy passwords).

    Shared by reference: whoever holds it redacts with the current set. ``add`` is called when
    a key is entered or changed; nothing is ever forgotten while the process runs, so an old key
    that reached a buffer before the change is still removed on the way out.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._redactor = Redactor(secrets)

    def add(self, *secrets: str | None) -> None:
        fresh = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}
        with self._lock:
            if fresh <= self._redactor.secrets:
                return
            self._redactor = Redactor(self._redactor.secrets | fresh)

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def all(self) -> frozenset[str]:
        return self._redactor.secrets

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def contains_secret(self, text: str) -> bool:
        return self._redactor.contains_secret(text)


def child_environment(
    environ: Mapping[str, str], secrets: KnownSecrets | Redactor, *, drop: Iterable[str] = ()
) -> dict[str, str]:
    """The environment for a program the bridge launches (a file browser, a web browser).

    The named variables (``EPOS_BRIDGE_API_KEY``) are dropped, proxy variables lose their
    ``user:password@``, and any other variable holding a form of a known secret is dropped too:
    a child can be anything the OS opens a folder or a link with, and it owes the bridge nothing.
    """
    redactor = secrets.redactor if isinstance(secrets, KnownSecrets) else secrets
    dropped = {name.upper() for name in drop}
    clean: dict[str, str] = {}
    for name, value in environ.items():
        if name.upper() in dropped:
            continue
        if name.lower().endswith("_proxy") and "@" in value:
            value = _without_userinfo(value)
        if redactor.contains_secret(value) or redactor.contains_secret(name):
            continue
        clean[name] = value
    return clean


def _without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return parts._replace(netloc=netloc).geturl()


# --- guests' personal data ----------------------------------------------------------------------

PERSONAL = "«personal»"
"""What a guest's name, email, phone or booking note becomes in a log line or diagnostics file."""
FRAME_PAYLOAD = "«frame not logged»"
"""What a WebSocket frame's payload becomes: requests and answers carry guests' names."""

PERSONAL_FIELDS = frozenset(
    {
        # Customer (contract §4.2), Party and Reservation (§4.4, §4.5): wire names and ours
        "name",
        "emailAddress",
        "email_address",
        "phoneNumber",
        "phone_number",
        "hostNotes",
        "host_notes",
        "guestRequests",
        "guest_requests",
        # the reference schema's and mappings' columns for an order's customer
        "customer_name",
        "customer_email",
        "customer_phone",
        "customerName",
        "customerEmail",
        "customerPhone",
    }
)
"""Fields whose value is a guest's personal data wherever they appear. ``name`` is also a dish's,
a table's or a capability's name; a log line loses those too, which costs support little."""

_QUOTE = r"""(?:\\"|"|')"""
_FIELD_NAMES = "|".join(sorted(PERSONAL_FIELDS, key=len, reverse=True))
_PERSONAL_FIELD = re.compile(
    rf"""(?P<key>(?<![\w\\]){_QUOTE}?(?:{_FIELD_NAMES}){_QUOTE}?\s*[:=]\s*)"""
    r"""(?P<value>\\"(?:(?!\\").)*\\"|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')"""
)
"""``"name": "…"``, ``'name': '…'``, ``name='…'`` and ``\\"name\\": \\"…\\"``: the key (kept) and its
quoted value (replaced, in the same quotes)."""
_FRAME = re.compile(
    r"(?P<head>(?:^|(?<=: ))[<>] (?:TEXT|BINARY|CONT) )(?P<data>.*)(?P<tail> \[[^\[\]\n]*\d+ bytes?[^\[\]\n]*\])$",
    re.MULTILINE,
)
"""A data frame as ``websockets`` logs it (``< TEXT '{"jsonrpc": …}' [399 bytes]``), alone or after
a log line's ``logger: `` prefix."""
_FIELD_HINTS = ("name", "mail", "phone", "Phone", "otes", "equests")


def _quoted_placeholder(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = '\\"' if value.startswith('\\"') else value[0]
    return f"{match.group('key')}{quote}{PERSONAL}{quote}"


def redact_personal(text: str) -> str:
    """``text`` without guests' personal data: every value of a :data:`PERSONAL_FIELDS` field,
    and every logged WebSocket frame's payload. The rest of each line is kept for support."""
    if not text:
        return text
    if "TEXT " in text or "BINARY " in text or "CONT " in text:
        text = _FRAME.sub(lambda m: f"{m.group('head')}{FRAME_PAYLOAD}{m.group('tail')}", text)
    if any(hint in text for hint in _FIELD_HINTS):
        text = _PERSONAL_FIELD.sub(_quoted_placeholder, text)
    return text
