"""The ``epos-bridge`` commands as an installer runs them: real processes, the real simulator."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL, make_url

from epos_bridge import __version__
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.sim.simulator import DEMO_API_KEY, DojoSimulator
from epos_bridge.testing.processes import isolated_env
from tests.e2e.conftest import REQUEST_LINE, CliProcess, posix_signals, run_cli
from tests.helpers.db_servers import mariadb_server, mariadb_url  # noqa: F401 - fixtures, found by name
from tests.helpers.mini_till import MiniTill, mini_mapping

pytestmark = pytest.mark.timeout(90)


def lines_starting(output: str, mark: str) -> dict[str, str]:
    """``{check name: line}`` for doctor lines like ``PASS  POS database: …``."""
    found = {}
    for line in output.splitlines():
        if line.startswith(f"{mark}  "):
            name = line[len(mark) + 2 :].split(":", 1)[0]
            found[name] = line
    return found


async def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = await run_cli(["--version"], isolated_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"epos-bridge {__version__}"


# --- doctor -------------------------------------------------------------------------------


async def test_doctor_passes_every_check_against_the_simulator_and_the_demo_venue(
    bridge_env: dict[str, str], demo_db: Path, api_key: str
) -> None:
    result = await run_cli(["doctor"], bridge_env)

    assert result.returncode == 0, result.stdout + result.stderr
    passed = lines_starting(result.stdout, "PASS")
    assert set(passed) == {"API key", "POS database", "gateway", "Dojo API"}, result.stdout
    assert "FAIL" not in result.stdout
    assert str(demo_db) in passed["POS database"]
    assert "sandbox key from the environment" in passed["API key"]
    assert api_key not in result.stdout + result.stderr


async def test_doctor_names_a_missing_database_with_a_fix_and_does_not_create_it(
    bridge_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "pos.db"
    result = await run_cli(["doctor"], {**bridge_env, "EPOS_BRIDGE_DB": str(missing)})

    assert result.returncode == 1, result.stdout + result.stderr
    failed = lines_starting(result.stdout, "FAIL")
    assert set(failed) == {"POS database"}, result.stdout
    line = failed["POS database"]
    assert "pos.db" in line
    assert " — " in line and line.split(" — ", 1)[1].strip()  # a fix follows the dash
    assert {"API key", "gateway", "Dojo API"} <= set(lines_starting(result.stdout, "PASS"))
    assert "Traceback" not in result.stdout + result.stderr
    assert not missing.exists() and not missing.parent.exists()


async def test_doctor_checks_a_pos_database_on_a_server_for_real_and_never_prints_its_password(
    bridge_env: dict[str, str],
    tmp_path: Path,
    mariadb_url: str,  # noqa: F811 - the fixture
) -> None:
    mapping = mini_mapping(tmp_path)
    till = MiniTill(mariadb_url, mapping)
    till.create()
    till.close()
    full = make_url(mariadb_url)
    without = URL.create(full.drivername, full.username, None, full.host, full.port, full.database).render_as_string()
    env = {**bridge_env, "EPOS_BRIDGE_ADAPTER": "sqlmap", "EPOS_BRIDGE_MAPPING": str(tmp_path / "mini_mysql.toml"),
           "EPOS_BRIDGE_DB": without, "EPOS_BRIDGE_DB_PASSWORD": str(full.password)}  # fmt: skip
    result = await run_cli(["doctor"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert without in lines_starting(result.stdout, "PASS")["POS database"]
    assert str(full.password) not in result.stdout + result.stderr

    wrong = await run_cli(["doctor"], {**env, "EPOS_BRIDGE_DB_PASSWORD": "not-the-password-x"})
    line = lines_starting(wrong.stdout, "FAIL")["POS database"]
    assert "refused the bridge's user name or password" in line
    assert "not-the-password-x" not in wrong.stdout + wrong.stderr


async def test_a_plain_ws_url_without_allow_insecure_is_refused_naming_the_variable(
    bridge_env: dict[str, str], api_key: str
) -> None:
    env = {k: v for k, v in bridge_env.items() if k != "EPOS_BRIDGE_ALLOW_INSECURE"}
    env["EPOS_BRIDGE_API_URL"] = "https://api.dojo.invalid"  # only the gateway URL is insecure
    for command in (["doctor"], ["run", "--headless"], ["capabilities"]):
        result = await run_cli(command, env, timeout=30)
        output = result.stdout + result.stderr
        assert result.returncode != 0, (command, output)
        assert "EPOS_BRIDGE_WS_URL" in output, (command, output)
        assert "EPOS_BRIDGE_ALLOW_INSECURE" in output, (command, output)  # says how to allow it
        assert "Traceback" not in output, (command, output)
        assert api_key not in output


# --- capabilities -------------------------------------------------------------------------


async def test_capabilities_lists_the_23_implemented_and_is_in_sync_once_registered(
    bridge_env: dict[str, str], simulator: DojoSimulator
) -> None:
    simulator.rest.set_registered_names([c.value for c in Capability])

    result = await run_cli(["capabilities"], bridge_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "implements 23 capabilities" in result.stdout
    listed = re.findall(r"^  (\S+)$", result.stdout, flags=re.MULTILINE)
    assert sorted(listed) == sorted(c.value for c in Capability)
    assert "registered at Dojo: 23" in result.stdout
    assert "missing at Dojo" not in result.stdout
    assert len(simulator.rest.requests_to("GET", "/epos/integrations")) == 1
    assert simulator.rest.requests_to("PUT", "/epos/integrations/ws") == []  # a look, not a change


async def test_capabilities_shows_what_dojo_is_missing_and_exits_1(
    bridge_env: dict[str, str], simulator: DojoSimulator
) -> None:
    registered = sorted(c.value for c in Capability if c.value != "ExtendOrderLock")
    simulator.rest.set_registered_names(registered)

    result = await run_cli(["capabilities"], bridge_env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "registered at Dojo: 22" in result.stdout
    assert "missing at Dojo: ExtendOrderLock" in result.stdout


async def test_capabilities_accepts_legacy_aliases_as_the_same_capability(
    bridge_env: dict[str, str], simulator: DojoSimulator
) -> None:
    """Contract §2.1: a legacy name read back from Dojo equals its wire-aligned alias."""
    names = [c.value for c in Capability if c.value != "RecordOrderPaymentById"] + ["RecordOrderPayment"]
    simulator.rest.set_registered_names(names)

    result = await run_cli(["capabilities"], bridge_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "missing at Dojo" not in result.stdout


# --- demo and simulate ----------------------------------------------------------------------


@posix_signals
async def test_demo_headless_serves_simulated_flows_and_exits_0_on_sigterm(
    spawn: Callable[..., CliProcess], tmp_path: Path
) -> None:
    env = isolated_env(tmp_path)
    process = spawn(["demo", "--headless", "--flow-interval", "0.5"], env, name="demo")

    await process.wait_for(lambda: "SearchOrdersV1 id=" in process.stderr, 15, "a SearchOrdersV1 request line")
    assert any(REQUEST_LINE.search(line) for line in process.stderr.splitlines())
    demo_folders = list(Path(env["TMPDIR"]).glob("epos-bridge-demo-*"))
    assert len(demo_folders) == 1  # the demo's venue lives in TMPDIR ...

    code, seconds = await process.terminate(timeout=10)
    print(f"demo --headless: SIGTERM to exit {seconds:.2f} s")

    assert code == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert not demo_folders[0].exists()  # ... and is removed on exit
    assert DEMO_API_KEY not in process.stderr  # even the public demo key is redacted


def free_port_pair() -> int:
    """A port p with p and p + 1 free on 127.0.0.1 (simulate uses --port + 1 for REST)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free pair of ports")


@posix_signals
async def test_simulate_prints_its_urls_serves_them_and_exits_0_on_sigterm(
    spawn: Callable[..., CliProcess], tmp_path: Path
) -> None:
    port = free_port_pair()
    process = spawn(["simulate", "--port", str(port)], isolated_env(tmp_path), name="simulate")

    await process.wait_for(lambda: "REST simulator:" in process.stdout, 15, "the URLs")
    assert f"gateway simulator: ws://127.0.0.1:{port}/epos" in process.stdout
    assert f"REST simulator:    http://127.0.0.1:{port + 1}" in process.stdout
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        answer = await http.get(
            f"http://127.0.0.1:{port + 1}/epos/integrations", headers={"Authorization": f"Basic {DEMO_API_KEY}"}
        )
    assert answer.status_code == 200
    assert answer.json()["wsIntegrations"] == []

    code, seconds = await process.terminate(timeout=10)
    print(f"simulate: SIGTERM to exit {seconds:.2f} s")

    assert code == 0, process.stderr
    assert "Traceback" not in process.stderr


async def test_run_without_any_key_says_how_to_provide_one(tmp_path: Path, demo_db: Path) -> None:
    """No EPOS_BRIDGE_API_KEY and no keyring (the fail backend): a sentence, not a traceback."""
    env = {**isolated_env(tmp_path), "EPOS_BRIDGE_SOFTWARE_HOUSE_ID": "x", "EPOS_BRIDGE_DB": str(demo_db)}
    result = await run_cli(["run", "--headless"], env, timeout=30)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "API key" in output
    assert "EPOS_BRIDGE_API_KEY" in output  # what to do, for a headless service (STYLE: small habits)
    assert "Traceback" not in output
