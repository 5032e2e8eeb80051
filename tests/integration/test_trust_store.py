"""Both halves of the link trust the same store: the OS's (epos_bridge/host/tls.py, via truststore).

A local TLS gateway and a local TLS REST API present certificates from a CA made here. That CA
is trusted only through the configured store: on Linux truststore uses OpenSSL's default verify
paths, which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``, so the test points those at a bundle
holding that CA alone and at an empty folder (no root, no change to the machine's store). Both
halves must then accept it, and both must refuse a server whose CA is not in the store, before
a single HTTP byte reaches it. Without the configured store (the machine's own), the made-up CA
is refused too: the trust came from the store, not from anywhere else (certifi, a bypass).
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from epos_bridge.dojo_api import DojoClient
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.gateway.session import GatewaySession, GatewaySettings
from epos_bridge.host import tls
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.dojo_errors import NetworkError
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.sim.rest import RestSimulator
from tests.helpers.certificates import server_context_for, valid_for_a_day

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the store is configured through OpenSSL's paths")

API_KEY = "sk_sandbox_fake_truststore_0123456789"
HOUSE = "acme-pos"


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_ca(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        valid_for_a_day(subject, subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def server_context(ca: Authority, folder: Path) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1 whose certificate ``ca`` signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        valid_for_a_day(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca.cert.subject, key.public_key()
        )
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return server_context_for(cert, key, folder)


@pytest.fixture
def proxy_ca() -> Authority:
    """The CA an HTTPS-inspecting proxy would present: in the configured store only."""
    return make_ca("Venue chain inspection CA (test)")


@pytest.fixture
def configured_store(tmp_path: Path, proxy_ca: Authority, monkeypatch: pytest.MonkeyPatch) -> Path:
    bundle = tmp_path / "store" / "ca-bundle.pem"
    bundle.parent.mkdir()
    bundle.write_bytes(proxy_ca.pem())
    empty = tmp_path / "store" / "no-hashed-certs"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    return bundle


@asynccontextmanager
async def tls_dojo(context: ssl.SSLContext) -> AsyncIterator[tuple[GatewaySimulator, RestSimulator]]:
    async with (
        GatewaySimulator(expected_api_key=API_KEY, expected_software_house_id=HOUSE, ssl_context=context) as gateway,
        RestSimulator(API_KEY, HOUSE, ssl_context=context) as rest,
    ):
        yield gateway, rest


async def gateway_outcome(gateway: GatewaySimulator) -> tuple[ConnectionState, str | None]:
    """Run the real session against ``gateway`` until it connects or its first attempt fails."""
    settings = GatewaySettings(credentials=DojoCredentials(API_KEY, HOUSE), ws_url=gateway.url, close_timeout_s=1)

    async def serve(_frame: str | bytes) -> None:
        return None

    session = GatewaySession(settings, serve)
    done = asyncio.Event()
    session.subscribe(
        lambda s: done.set() if s.state is ConnectionState.CONNECTED or s.next_retry_at is not None else None
    )
    task = asyncio.create_task(session.run())
    try:
        async with asyncio.timeout(15):
            await done.wait()
        return session.status.state, session.status.last_error
    finally:
        await session.stop()
        await task


async def rest_outcome(rest: RestSimulator) -> Exception | None:
    async with tls.dojo_http_client(rest.base_url, None) as http:
        client = DojoClient(http, credentials=DojoCredentials(API_KEY, HOUSE), base_url=rest.base_url, max_retries=0)
        try:
            await client.get_integrations()
        except NetworkError as exc:
            return exc
    return None


async def test_both_halves_accept_a_ca_trusted_only_through_the_configured_store(
    tmp_path: Path, proxy_ca: Authority, configured_store: Path
) -> None:
    async with tls_dojo(server_context(proxy_ca, tmp_path / "server")) as (gateway, rest):
        state, error = await gateway_outcome(gateway)
        rest_error = await rest_outcome(rest)

    assert (state, error) == (ConnectionState.CONNECTED, None)
    assert [h.status for h in gateway.handshakes] == [101]
    assert rest_error is None
    assert [r.path for r in rest.requests] == ["/epos/integrations"]


async def test_both_halves_refuse_a_ca_the_store_does_not_hold(tmp_path: Path, configured_store: Path) -> None:
    stranger = make_ca("Unknown CA (test)")
    async with tls_dojo(server_context(stranger, tmp_path / "server")) as (gateway, rest):
        state, error = await gateway_outcome(gateway)
        rest_error = await rest_outcome(rest)

    assert state is ConnectionState.DISCONNECTED
    assert error is not None and "certificate" in error and "could not be verified" in error
    assert gateway.handshakes == []  # refused during TLS, before any HTTP
    assert rest_error is not None and "certificate" in str(rest_error).lower()
    assert rest.requests == []


async def test_without_the_configured_store_the_same_ca_is_refused_by_both(
    tmp_path: Path, proxy_ca: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with tls_dojo(server_context(proxy_ca, tmp_path / "server")) as (gateway, rest):
        state, _ = await gateway_outcome(gateway)
        rest_error = await rest_outcome(rest)

    assert state is ConnectionState.DISCONNECTED
    assert gateway.handshakes == []
    assert rest_error is not None
    assert rest.requests == []


def test_the_context_is_the_os_store_verifying_certificates_and_host_names() -> None:
    import truststore

    context = tls.client_context()

    assert isinstance(context, truststore.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_certifi_is_used_only_where_no_os_store_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import certifi
    import truststore

    monkeypatch.setattr(tls.ssl, "get_default_verify_paths", lambda: ssl.DefaultVerifyPaths(None, None, "", "", "", ""))
    monkeypatch.setattr(tls, "LINUX_CA_BUNDLES", (str(tmp_path / "none.pem"),))

    assert tls.os_store_available() is False
    context = tls.client_context()

    assert not isinstance(context, truststore.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname is True
    certifi_count = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == certifi_count > 0
    assert [r.getMessage() for r in caplog.records] == ["no OS certificate store found; using certifi's CA bundle"]
