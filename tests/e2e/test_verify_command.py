"""``epos-bridge verify`` as an installer runs it: ``epos-bridge simulate`` plays Dojo, ``epos-bridge
run --headless`` serves the demo venue, and ``verify`` asks the simulated tester tool to run its
flows, which drive that running bridge over the WebSocket. Three real processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from epos_bridge.protocol.capabilities import Capability
from epos_bridge.sim.simulator import DEMO_API_KEY, DEMO_SOFTWARE_HOUSE_ID
from epos_bridge.testing.processes import bridge_env, isolated_env
from tests.e2e.conftest import CliProcess, run_cli
from tests.e2e.test_cli_commands import free_port_pair

pytestmark = pytest.mark.timeout(120)

FLOWS = [
    "Get Order through EPOS Data API",
    "Get Order Bill through EPOS Data API",
    "Search Orders through EPOS Data API",
    "Tables and Areas through EPOS Data API",
    "Lock Conflict through EPOS Data API",
    "Pay at Table through EPOS Data API",
    "Bookings through EPOS Data API",
    "Payment Intent Events through EPOS Data API",
]


class Site:
    """The simulator and a bridge serving the demo venue, as two processes."""

    def __init__(self, env: dict[str, str], api_url: str) -> None:
        self.env = env
        self.api_url = api_url

    async def register_only(self, names: list[str]) -> None:
        """What an installer could do with curl: replace the registered set at Dojo."""
        body = {"capabilities": [{"name": name, "version": "v1"} for name in names]}
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            answer = await http.put(
                f"{self.api_url}/epos/integrations/ws", json=body, headers={"Authorization": f"Basic {DEMO_API_KEY}"}
            )
        answer.raise_for_status()


@pytest.fixture
async def site(spawn: Callable[..., CliProcess], tmp_path: Path, demo_db: Path) -> Site:
    port = free_port_pair()
    # No random product flows during the test (an hour apart), and no pause between tester steps.
    simulator = spawn(
        ["simulate", "--port", str(port), "--flow-interval", "3600", "--tester-pause", "0"],
        isolated_env(tmp_path / "sim"),
        name="simulate",
    )
    await simulator.wait_for(lambda: "REST simulator:" in simulator.stdout, 20, "the simulator's URLs")
    env = bridge_env(
        tmp_path / "bridge",
        ws_url=f"ws://127.0.0.1:{port}/epos",
        api_url=f"http://127.0.0.1:{port + 1}",
        api_key=DEMO_API_KEY,
        software_house_id=DEMO_SOFTWARE_HOUSE_ID,
        db=demo_db,
        data_dir=tmp_path / "bridge-data",
    )
    bridge = spawn(["run", "--headless"], env, name="run")
    await bridge.wait_for(lambda: "gateway connected" in bridge.stderr, 20, "the bridge to connect")
    await bridge.wait_for(lambda: "registered 23 capabilities" in bridge.stderr, 20, "the registration")
    return Site(env, f"http://127.0.0.1:{port + 1}")


def flows_of(stdout: str) -> list[dict[str, Any]]:
    document = json.loads(stdout)
    assert isinstance(document, list)
    return document


async def test_verify_json_succeeds_for_every_flow_against_the_running_bridge(site: Site, tmp_path: Path) -> None:
    report = tmp_path / "verification.html"
    result = await run_cli(["verify", "--json", "--report", str(report)], site.env, timeout=90)

    assert result.returncode == 0, result.stdout + result.stderr
    flows = flows_of(result.stdout)
    assert [flow["name"] for flow in flows] == FLOWS
    for flow in flows:
        assert flow["status"] == "SUCCESS", flow
        assert flow["steps"] and all(step["status"] == "SUCCESS" for step in flow["steps"]), flow
        assert {"name", "status", "steps"} <= set(flow)
    pay = next(flow for flow in flows if flow["flow"] == "Pay at Table")
    assert pay["params"]["tableId"]  # picked from the POS: a table with an order to settle
    page = report.read_text(encoding="utf-8")
    assert "All 8 flows succeeded" in page and "The Copper Kettle" in page
    assert DEMO_API_KEY not in page + result.stdout + result.stderr


async def test_verify_fails_naming_the_step_when_a_capability_is_not_registered(site: Site) -> None:
    await site.register_only([c.value for c in Capability if c is not Capability.GET_ORDER_BY_ID])

    result = await run_cli(["verify", "--json", "--flow", "Get Order", "--flow", "Tables and Areas"], site.env)

    assert result.returncode == 1, result.stdout + result.stderr
    get_order, tables = flows_of(result.stdout)
    assert (get_order["name"], get_order["status"]) == ("Get Order through EPOS Data API", "FAILURE")
    assert get_order["failedStep"] == "Get the order by its id"
    assert get_order["steps"][0]["additionalInformation"] == [
        "GetOrder method not found",
        "Please register the GetOrder method on an EPOS Data API adapter",
    ]
    assert tables["status"] == "SUCCESS"

    text = await run_cli(["verify", "--flow", "get order"], site.env)
    assert text.returncode == 1
    assert "FAILURE    Get the order by its id" in text.stdout
    assert "GetOrder method not found" in text.stdout
    assert "1 flow: 0 succeeded, 1 did not (Get Order through EPOS Data API)" in text.stdout


async def test_verify_prints_each_step_and_takes_parameters(site: Site) -> None:
    result = await run_cli(
        ["verify", "--flow", "Pay at Table", "--param", "parts=3", "--param", "tipPercent=0"], site.env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "> Pay at Table (tableId=" in result.stdout and "parts=3, tipPercent=0" in result.stdout
    for line in ("SUCCESS    Find the table's payable orders", "Pay part 3 of 3", "SUCCESS    Unlock the order"):
        assert line in result.stdout
    assert "1 flow: all succeeded" in result.stdout

    listed = await run_cli(["verify", "--list"], site.env)
    assert listed.returncode == 0
    assert "    tableId (string, required): The EPOS id of a table with a payable order" in listed.stdout
    assert "    parts (integer, optional, default 2)" in listed.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--flow", "Refunds"], "Dojo offers no flow called 'Refunds'"),
        (["--param", "orderId"], "--param takes KEY=VALUE"),
        (["--flow", "Bookings", "--param", "orderId=7"], "no flow chosen takes the parameter orderId"),
    ],
)
async def test_a_bad_command_line_is_exit_2_with_a_sentence(site: Site, args: list[str], says: str) -> None:
    result = await run_cli(["verify", *args], site.env)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_production_key_is_exit_2_and_nothing_is_asked_of_dojo(tmp_path: Path, demo_db: Path) -> None:
    env = bridge_env(
        tmp_path,
        ws_url="wss://eu.ws.dojo.tech/epos",
        api_url="https://api.dojo.invalid",
        api_key="sk_prod_FakeKeyForTests_not_real",
        software_house_id=DEMO_SOFTWARE_HOUSE_ID,
        db=demo_db,
        data_dir=tmp_path / "data",
    )
    result = await run_cli(["verify"], env)
    assert result.returncode == 2
    assert "off for production keys" in result.stderr and "create orders" in result.stderr
    assert "sk_prod_FakeKeyForTests_not_real" not in result.stderr


async def test_an_account_without_the_tester_tool_is_exit_2(tmp_path: Path, demo_db: Path) -> None:
    """The real REST client against a Dojo that answers 404 on every tester path."""
    from aiohttp import web

    async def not_found(request: web.Request) -> web.Response:
        return web.json_response({"title": "Not Found", "status": 404}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        env = bridge_env(
            tmp_path,
            ws_url="ws://127.0.0.1:9/epos",
            api_url=f"http://{host}:{port}",
            api_key=DEMO_API_KEY,
            software_house_id=DEMO_SOFTWARE_HOUSE_ID,
            db=demo_db,
            data_dir=tmp_path / "data",
        )
        result = await run_cli(["verify", "--json"], env)
    finally:
        await runner.cleanup()
    assert result.returncode == 2
    assert "Dojo has not enabled the EPOS tester tool for this key; ask your Partnership Development Manager" in (
        result.stderr
    )
