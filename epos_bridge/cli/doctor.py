"""``epos-bridge doctor``: each part of the set-up checked for real, one pass/fail line each,
with the fix in words an installer can act on."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from epos_bridge.app import dojo_client, gateway_settings, open_adapter
from epos_bridge.config import BridgeSettings, ConfigError, KeyStore, KeyStoreError
from epos_bridge.dojo_api import AuthRejected, DojoApiError, DojoClient
from epos_bridge.domain.errors import EposFailure
from epos_bridge.gateway.policy import GatewayConfigError
from epos_bridge.gateway.session import GatewaySettings
from epos_bridge.host.tls import client_context, dojo_http_client
from epos_bridge.ports import CallContext, PosAdapter
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import redact
from epos_bridge.protocol.params import SearchOrdersParams, SearchTablesParams


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        fix = f" — {self.fix}" if self.fix and not self.passed else ""
        return f"{mark}  {self.name}: {self.detail}{fix}"


async def run_checks(settings: BridgeSettings, keystore: KeyStore | None = None, timeout_s: float = 8.0) -> list[Check]:
    secret = settings.api_key.get_secret_value() if settings.api_key else ""
    checks = [_key_check(settings, keystore)]
    checks.append(await _database_check(settings))
    try:
        gateway = gateway_settings(settings)
    except GatewayConfigError as exc:
        checks.append(Check("gateway", False, redact(str(exc), secret), "fix the setting named above"))
    else:
        checks.append(await _gateway_check(gateway, timeout_s))
    if not secret:
        checks.append(Check("Dojo API", False, "not checked: no API key", "enter it in Settings → API key"))
        return checks
    async with dojo_http_client(settings.api_url, settings.proxy) as http:
        checks.append(await _api_check(settings, dojo_client(settings, http), secret))
    return checks


def _key_check(settings: BridgeSettings, keystore: KeyStore | None) -> Check:
    if settings.api_key is not None:
        return Check("API key", True, f"{settings.environment} key from the {settings.api_key_source}")
    try:
        (keystore or KeyStore()).get_api_key()
    except KeyStoreError as exc:
        return Check("API key", False, str(exc), "install a keyring backend, or set EPOS_BRIDGE_API_KEY for a service")
    return Check("API key", False, "no key in the keyring", "enter it in Settings → API key")


async def _database_check(settings: BridgeSettings) -> Check:
    try:
        adapter = open_adapter(settings)
    except ConfigError as exc:
        return Check("POS database", False, str(exc), "set the database in Settings")
    try:
        read = await _one_read(adapter)
        await adapter.check_writable()  # payments and locks need to write, not only read
        return Check("POS database", True, f"{settings.db_path} ({read})")
    except EposFailure as exc:
        return Check("POS database", False, exc.message, "check the path in Settings and that the POS is running")
    finally:
        await adapter.close()


async def _one_read(adapter: PosAdapter) -> str:
    """A real read through a capability the adapter implements (a mapping may leave tables out)."""
    implemented = adapter.implemented_capabilities()
    context = CallContext(trace_id="doctor")
    if Capability.SEARCH_TABLES in implemented:
        tables = await adapter.search_tables(SearchTablesParams(), context)
        return f"{len(tables.data)} tables on the first page"
    if Capability.SEARCH_ORDERS in implemented:
        orders = await adapter.search_orders(SearchOrdersParams(), context)
        return f"{len(orders.data)} orders on the first page"
    return "opened"


async def _gateway_check(gateway: GatewaySettings, timeout_s: float) -> Check:
    # The bridge's own trust store, so doctor judges the certificate as the bridge does.
    tls: dict[str, Any] = {"ssl": await asyncio.to_thread(client_context)} if gateway.secure else {}
    try:
        async with asyncio.timeout(timeout_s):
            async with connect(
                gateway.ws_url,
                additional_headers=gateway.handshake_headers(),
                proxy=gateway.connect_proxy(),
                open_timeout=timeout_s,
                **tls,
            ) as connection:
                with contextlib.suppress(Exception):
                    await connection.close()
        return Check("gateway", True, f"handshake accepted by {gateway.ws_url}")
    except InvalidStatus as exc:
        code = exc.response.status_code
        fix = "check the API key and software-house-id in Settings" if code in (401, 403) else "contact Dojo support"
        return Check("gateway", False, f"{gateway.ws_url} refused the handshake ({code})", fix)
    except (OSError, TimeoutError) as exc:
        detail = redact(str(exc) or type(exc).__name__, gateway.api_key)
        return Check(
            "gateway", False, f"cannot reach {gateway.ws_url}: {detail}", "check the internet connection or proxy"
        )


async def _api_check(settings: BridgeSettings, client: DojoClient, secret: str) -> Check:
    try:
        integrations = await client.get_integrations()
    except AuthRejected as exc:
        return Check("Dojo API", False, redact(str(exc), secret), "check the API key in Settings")
    except (DojoApiError, ValueError) as exc:
        return Check("Dojo API", False, redact(str(exc), secret), "check the internet connection, or try again later")
    count = len(integrations.registered_capabilities)
    return Check("Dojo API", True, f"{settings.api_url} answered; {count} capabilities registered")
