"""The baseline's far end: a bare websockets asyncio client that answers every request ``{}``.

Run as its own process (``python -m benchmarks.echo_peer URL API_KEY SOFTWARE_HOUSE_ID``), in
place of the bridge: it connects to the same gateway simulator with the same handshake headers
and websockets options the bridge uses, parses each request frame (stdlib ``json``) and answers
it with ``{"jsonrpc": "2.0", "id": …, "method": …, "result": {}}``: the least any JSON-RPC peer
can do. The simulator matches the answer by its ``id`` exactly as it matches a bridge's, so the
driver code is identical for baseline and bridge; the difference is only the far end.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from epos_bridge.protocol.dojo import dojo_headers


async def echo(url: str, api_key: str, software_house_id: str) -> None:
    async with connect(
        url,
        additional_headers=dojo_headers(api_key, software_house_id, None),
        ping_interval=20,
        ping_timeout=10,
        max_size=4 * 1024 * 1024,
    ) as connection:
        try:
            async for frame in connection:
                request = json.loads(frame)
                answer = {"jsonrpc": "2.0", "id": request["id"], "method": request["method"], "result": {}}
                await connection.send(json.dumps(answer))
        except ConnectionClosed:
            pass


def main() -> int:
    url, api_key, software_house_id = sys.argv[1:4]
    asyncio.run(echo(url, api_key, software_house_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
