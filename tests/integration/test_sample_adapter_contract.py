"""The example third-party adapter (examples/sample_adapter), found the way the bridge finds any.

The package is made visible as an installed distribution without touching the venv: a
``.dist-info`` whose ``entry_points.txt`` is generated from the example's own ``pyproject.toml``
goes on ``sys.path`` beside its source, so ``importlib.metadata`` discovers the entry point as
written. A slower test builds it for real with pip (offline, into a temporary target).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from epos_bridge.adapters.registry import MinimalFactory, installed_adapters
from epos_bridge.app import open_adapter
from epos_bridge.config import BridgeSettings
from epos_bridge.dojo_api import DojoClient
from epos_bridge.ports import AdapterFactory, PosAdapter
from epos_bridge.protocol.capabilities import Capability
from epos_bridge.protocol.dojo import DojoCredentials
from epos_bridge.protocol.entities import Area, OrderStatus, Table
from epos_bridge.testing.contract_suite import AdapterContract, Seeder, StandardVenue

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_adapter"
SUBSET = {
    "GetOrderById",
    "SearchOrders",
    "RecordOrderPaymentById",
    "CreateOrderLock",
    "ExtendOrderLock",
    "DeleteOrderLock",
    "ListAreas",
    "SearchTables",
}


@pytest.fixture(scope="session")
def sample_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site")
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    added = [str(site), str(EXAMPLE / "src")]
    sys.path[:0] = added
    yield
    for entry in added:
        sys.path.remove(entry)
    sys.modules.pop("sample_pos_adapter", None)


class SampleSeeder:
    def __init__(self, location: Path) -> None:
        from sample_pos_adapter import venue_at

        self.venue = venue_at(location)

    def seed(self, venue: StandardVenue) -> None:
        self.venue.areas = [Area(id=a.id, name=a.name, waiter_ids=list(a.waiter_ids)) for a in venue.areas]
        self.venue.tables = [
            Table(id=t.id, name=t.name, max_covers=t.max_covers, area_id=t.area_id, waiter_ids=list(t.waiter_ids))
            for t in venue.tables
        ]

    def add_open_order(self, table_id: str, total_value: int, currency: str) -> str:
        return str(self.venue.add_order(table_id, total_value, currency).id)

    def _order(self, order_id: str) -> Any:
        return self.venue.orders[int(order_id)]

    def set_order_status(self, order_id: str, status: str) -> None:
        self._order(order_id).status = OrderStatus(status)

    def open_order_at_till(self, order_id: str, till: str) -> None:
        self._order(order_id).open_at_till = till

    def set_order_updated_at(self, order_id: str, moment: datetime) -> None:
        self._order(order_id).updated_at = moment

    def remove_order(self, order_id: str) -> None:
        with self.venue.guard:
            del self.venue.orders[int(order_id)]


@pytest.mark.usefixtures("sample_installed")
class TestSampleAdapterContract(AdapterContract):
    @pytest.fixture
    def epos_venue_seeder(self, tmp_path: Path) -> Seeder:
        return SampleSeeder(tmp_path / "venue")

    @pytest.fixture
    def epos_adapter_factory(self, tmp_path: Path) -> Callable[[], PosAdapter]:
        return lambda: installed_adapters()["sample"].open(tmp_path / "venue")


@pytest.mark.usefixtures("sample_installed")
def test_the_sample_describes_itself_as_a_whole_factory() -> None:
    factory = installed_adapters()["sample"]

    assert not isinstance(factory, MinimalFactory), "it offers every member, so it is used as it is"
    assert isinstance(factory, AdapterFactory)
    assert factory.location == "file"


def test_the_registry_finds_the_sample_beside_the_built_ins() -> None:
    adapters = installed_adapters()

    assert list(adapters)[:2] == ["sqlite", "jsonfile"]
    assert "sample" in adapters
    assert "in-memory" in adapters["sample"].description


@pytest.mark.usefixtures("sample_installed")
async def test_registration_sends_exactly_the_sample_subset(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []

    def dojo(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json=[{"capabilities": []}])

    adapter = open_adapter(BridgeSettings(adapter="sample", db_path=tmp_path / "venue"))
    async with httpx.AsyncClient(transport=httpx.MockTransport(dojo)) as http:
        client = DojoClient(http, credentials=DojoCredentials("sk_sandbox_x", "shid"), base_url="https://api.dojo.tech")
        await client.register_capabilities(adapter.implemented_capabilities())
    await adapter.close()

    [body] = sent
    assert {c["name"] for c in body["capabilities"]} == SUBSET
    assert {c.value for c in Capability} > SUBSET


@pytest.mark.slow
def test_the_example_package_builds_and_registers_its_entry_point_with_pip(tmp_path: Path) -> None:
    """A real PEP 517 build of the example, offline, into a throwaway target (never the venv)."""
    if shutil.which("pip", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pip is not available in this environment")
    setuptools_version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    if setuptools_version < (70, 1) and importlib.util.find_spec("wheel") is None:
        pytest.skip("an offline build needs setuptools>=70.1 or the 'wheel' package in the venv (not installed)")
    target = tmp_path / "target"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    probe = (
        "import json; from epos_bridge.adapters.registry import MinimalFactory, installed_adapters; "
        "a = installed_adapters()['sample'].open(__import__('pathlib').Path('v')); "
        "print(json.dumps(sorted(c.value for c in a.implemented_capabilities())))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(target), "PATH": ""},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == SUBSET
