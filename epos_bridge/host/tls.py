"""One trust store for both halves of the link: the WebSocket to the gateway and the REST client.

Hospitality chains often inspect HTTPS at a proxy whose CA their IT department installs in the
operating system's certificate store. If the two halves trusted different stores, one would work
behind such a proxy and the other would fail. So both use the OS store through ``truststore``:
Windows' and macOS' own verification APIs, and on Linux OpenSSL's default verify paths (which
honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``) or the distribution's CA bundle.

certifi's bundle is used only where no OS store can be found (a Linux without a CA bundle, or a
Python where truststore cannot work), so verification never silently has nothing to trust.

Verification is always on: :func:`client_context` has no switch to turn it off, and it checks
host names. It is built for each connection (cheap), so a CA installed while the bridge runs is
trusted from the next connection on.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import sys

import certifi
import httpx

log = logging.getLogger(__name__)

# The distributions' CA bundles truststore also looks for when OpenSSL's compiled-in paths are
# empty (a Python built elsewhere, as in a frozen bundle).
LINUX_CA_BUNDLES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)
_HASHED_CERT = re.compile(r"^[0-9a-fA-F]{8}\.[0-9]$")

HTTP_TIMEOUT_S = 10.0


def os_store_available() -> bool:
    """Whether the OS store has certificates truststore can use (always, off Linux/BSD)."""
    if sys.platform in ("win32", "darwin"):
        return True
    defaults = ssl.get_default_verify_paths()
    if defaults.cafile:
        return True
    if defaults.capath and os.path.isdir(defaults.capath):
        try:
            if any(_HASHED_CERT.match(name) for name in os.listdir(defaults.capath)):
                return True
        except OSError:
            pass
    return any(os.path.isfile(bundle) for bundle in LINUX_CA_BUNDLES)


def client_context() -> ssl.SSLContext:
    """A client TLS context over the OS trust store (certifi where there is none)."""
    if os_store_available():
        try:
            import truststore
        except ImportError as exc:  # an interpreter without the chain APIs truststore needs
            log.warning("the OS certificate store cannot be used (%s); using certifi's CA bundle", exc)
        else:
            context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            return context
    else:
        log.warning("no OS certificate store found; using certifi's CA bundle")
    return ssl.create_default_context(cafile=certifi.where())


def dojo_http_client(api_url: str, proxy: str | None) -> httpx.AsyncClient:
    """The REST client's HTTP client: the OS trust store, the proxy setting and nothing else.

    A stray environment proxy is never used unless the installer chose ``"system"``; a
    plain-text API URL (loopback only, see :mod:`epos_bridge.protocol.endpoints`) is always
    reached directly.
    """
    timeout = httpx.Timeout(HTTP_TIMEOUT_S)
    if api_url.startswith("http://"):
        return httpx.AsyncClient(timeout=timeout, trust_env=False)
    if proxy == "system":
        return httpx.AsyncClient(timeout=timeout, trust_env=True, verify=client_context())
    return httpx.AsyncClient(timeout=timeout, trust_env=False, proxy=proxy, verify=client_context())
