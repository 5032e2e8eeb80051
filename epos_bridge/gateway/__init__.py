"""The WebSocket session to Dojo's EPOS Data gateway: handshake, keepalive, reconnect policy."""

from epos_bridge.gateway.connection_state import ConnectionState, ConnectionStatus
from epos_bridge.gateway.policy import Backoff, BackoffPolicy, GatewayConfigError, classify
from epos_bridge.gateway.session import GatewaySession, GatewaySettings

__all__ = [
    "Backoff",
    "BackoffPolicy",
    "ConnectionState",
    "ConnectionStatus",
    "GatewayConfigError",
    "GatewaySession",
    "GatewaySettings",
    "classify",
]
