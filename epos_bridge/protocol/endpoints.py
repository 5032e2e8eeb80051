"""Which Dojo endpoints the bridge may talk to in plain text: this machine's loopback only.

``EPOS_BRIDGE_ALLOW_INSECURE=1`` exists for the local simulator. It must never send a production
key across a network in clear text, so even with the flag a ``ws://`` or ``http://`` endpoint is
accepted only when its host is a loopback literal: an address in 127.0.0.0/8, ``::1`` (also as
an IPv4-mapped ``::ffff:127.x.y.z``), or the name ``localhost``. Any other name is refused even if
it resolves to loopback today: the check is made on the text, before any DNS lookup or
connection, so nothing an attacker controls (DNS, the LAN) can widen it.

One rule for the settings, the gateway session and the REST client, so their messages agree.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ENV_ALLOW_INSECURE = "EPOS_BRIDGE_ALLOW_INSECURE"
LOOPBACK_NAMES = frozenset({"localhost"})

PLAIN_SCHEMES = {"wss": "ws", "https": "http"}
"""Secure scheme → its plain-text twin."""


def is_loopback_host(host: str | None) -> bool:
    """True for 127.0.0.0/8, ``::1`` (and IPv4-mapped loopback) and ``localhost``; never resolves."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def plain_text_refusal(url: str, secure_scheme: str, *, allow_insecure: bool) -> str | None:
    """Why ``url`` may not be used, in words; ``None`` when it may.

    Only the plain-text case is judged here (``ws://`` for ``wss``, ``http://`` for ``https``);
    other malformed URLs are the caller's to describe.
    """
    plain = PLAIN_SCHEMES[secure_scheme]
    parts = urlsplit(url)
    if parts.scheme != plain:
        return None
    if not allow_insecure:
        return (
            f"must be a {secure_scheme}:// URL, because a {plain}:// endpoint would carry the API key in clear"
            f" text (set {ENV_ALLOW_INSECURE}=1 to allow {plain}:// to this machine's loopback, for the simulator)"
        )
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not is_loopback_host(host):
        return (
            f"plain-text endpoints ({plain}://) are allowed only on loopback (127.0.0.0/8, ::1, localhost),"
            f" even with {ENV_ALLOW_INSECURE}=1, and {host or url!r} is not this machine: use a {secure_scheme}:// URL"
        )
    return None
