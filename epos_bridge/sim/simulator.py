"""The whole local stand-in for Dojo: the EPOS Data gateway, the REST API and product flows.

The demo and the end-to-end tests point the bridge at :attr:`DojoSimulator.ws_url` and
:attr:`DojoSimulator.api_url`; ``run_flows`` then plays Pay at Table, Bookings and Order and
Pay against whatever bridge is connected, and :attr:`DojoSimulator.tester` serves Dojo's EPOS
tester tool (``/epos-tester-tool/*``, ``sim/tester.py``). One product flow runs at a time, a
tester flow included, so they never trip over each other's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from epos_bridge.sim import flows
from epos_bridge.sim.gateway import GatewaySimulator, SimulatorError
from epos_bridge.sim.rest import RestSimulator
from epos_bridge.sim.serving import LocalServer
from epos_bridge.sim.tester import TesterToolSimulator

log = logging.getLogger(__name__)

DEMO_API_KEY = "sk_sandbox_epos_bridge_demo_key"
"""Not a secret: the key the simulator accepts in demo mode."""
DEMO_SOFTWARE_HOUSE_ID = "demo-software-house"


class DojoSimulator(LocalServer):
    def __init__(
        self,
        *,
        api_key: str = DEMO_API_KEY,
        software_house_id: str = DEMO_SOFTWARE_HOUSE_ID,
        reseller_id: str | None = None,
        host: str = "127.0.0.1",
        ws_port: int = 0,
        api_port: int = 0,
        tester_step_pause: float = 0.0,
    ) -> None:
        self.gateway = GatewaySimulator(
            host,
            ws_port,
            expected_api_key=api_key,
            expected_software_house_id=software_house_id,
            expected_reseller_id=reseller_id,
        )
        self.rest = RestSimulator(api_key, software_house_id, host=host, port=api_port)
        self.products = asyncio.Lock()
        """Held while a product flow (or a tester flow) plays against the bridge."""
        self.tester = TesterToolSimulator(
            self.gateway, lambda: self.rest.registered, products=self.products, step_pause=tester_step_pause
        )
        self.rest.add_routes(self.tester.routes())
        self.reports: list[flows.FlowReport] = []

    async def start(self) -> None:
        await self.gateway.start()
        await self.rest.start()

    async def stop(self) -> None:
        await self.tester.stop()
        await self.rest.stop()
        await self.gateway.stop()

    @property
    def ws_url(self) -> str:
        return self.gateway.url

    @property
    def api_url(self) -> str:
        return self.rest.base_url

    def refuse_keys(self, status: int = 401) -> None:
        """Both halves answer ``status`` to every key until :meth:`accept_keys`."""
        self.gateway.refuse_keys(status)
        self.rest.refuse_keys(status)

    def accept_keys(self) -> None:
        self.gateway.accept_keys()
        self.rest.accept_keys()

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self.gateway.request(method, params, timeout=15)

    async def run_flows(self, interval_s: float = 4.0, rng: random.Random | None = None) -> None:
        """Play the products' flows forever (until cancelled), one every ``interval_s``."""
        rng = rng or random.Random()  # noqa: S311 - picking demo flows
        plays = (flows.order_and_pay, flows.pay_at_table, flows.bookings, flows.pay_at_table)
        while True:
            await asyncio.sleep(interval_s)
            if not self.gateway.connected:
                continue
            flow = rng.choice(plays)
            with contextlib.suppress(SimulatorError):
                async with self.products:
                    report = await flow(self.send, rng=rng)
                self.reports.append(report)
                del self.reports[:-50]
                outcome = "ok" if report.ok else f"stopped: {report.error}"
                log.info("simulated %s: %s", report.name, outcome)
