"""Round trips over the WebSocket: the bare echo baseline and the whole bridge, same driver.

Process layout (chosen for fairness, stated in the output): the load generator, Dojo's side
(:class:`~epos_bridge.sim.simulator.DojoSimulator`), runs in the benchmark process; the far end
runs in a second process, either the bare echo peer (:mod:`benchmarks.echo_peer`) or the real
headless bridge (``python -m epos_bridge run --headless``). Two processes on two cores is what a
till has (Dojo's gateway is remote), and it keeps the bridge's CPU work from being counted
against the driver's event loop and vice versa.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Latency, rss_bytes
from epos_bridge.sim.gateway import GatewaySimulator
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator
from epos_bridge.testing.processes import isolated_env, simulator_env, stop_process
from epos_bridge.testing.venues import venue_with_open_orders

RequestFactory = Callable[[int], tuple[str, dict[str, Any]]]
BENCH_API_KEY = "sk_sandbox_benchmark_key_0001"
HEADERS = {"dojoRequestingProduct": "PayAtTable", "deviceId": "bench-terminal", "deviceType": "terminal"}
BIG_TOTAL = 10**12
"""Bench orders owe this much: a million 1p payments never reach it."""
RETRY_LINE = re.compile(rb"next gateway connection attempt in (?P<s>[0-9.]+) s")


def clean_env(folder: Path) -> dict[str, str]:
    """HOME/XDG in ``folder``, the fail keyring: the run never touches the user's settings."""
    return {**isolated_env(folder), "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def build_venue(path: Path, bench_orders: int) -> list[str]:
    """The demo venue plus ``bench_orders`` open orders owing :data:`BIG_TOTAL` (one item each)."""
    return venue_with_open_orders(path, bench_orders, BIG_TOTAL, reference_prefix="BENCH", item=("Bench tab", "BENCH"))


class Peer:
    """The far end in its own process, stdout/stderr to files (nothing blocks on a pipe)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *args], env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def retry_steps(self) -> list[float]:
        """Every backoff pause the bridge logged, in order."""
        return [float(m["s"]) for m in RETRY_LINE.finditer(self.log_path.read_bytes())]

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


def start_echo_peer(sim: DojoSimulator, env: dict[str, str], folder: Path) -> Peer:
    return Peer(
        ["-m", "benchmarks.echo_peer", sim.ws_url, BENCH_API_KEY, DEMO_SOFTWARE_HOUSE_ID], env, folder / "echo.log"
    )


def start_bridge(sim: DojoSimulator, env: dict[str, str], folder: Path, db: Path) -> Peer:
    # ``env`` is clean_env(folder): the same user folders again, plus its PYTHONPATH.
    bridge_env = {**env, **simulator_env(folder, sim, api_key=BENCH_API_KEY, db=db, data_dir=folder / "bridge-data")}
    return Peer(["-m", "epos_bridge", "run", "--headless"], bridge_env, folder / "bridge.log")


async def wait_connected(gateway: GatewaySimulator, peer: Peer, timeout: float = 30) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not gateway.connected:
        if peer.process.poll() is not None:
            raise RuntimeError(f"the peer exited ({peer.process.returncode}); see {peer.log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the peer did not connect within {timeout} s; see {peer.log_path}")
        await asyncio.sleep(0.01)


def _failed(response: dict[str, Any]) -> bool:
    return "error" in response


async def latency(gateway: GatewaySimulator, make: RequestFactory, count: int, start: int = 0) -> Latency:
    """``count`` requests one after another (1 in flight); milliseconds per round trip."""
    samples: list[float] = []
    errors = 0
    for i in range(start, start + count):
        method, params = make(i)
        began = time.perf_counter()
        response = await gateway.request(method, params, timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
        errors += _failed(response)
    return Latency.of(samples, errors)


@dataclass
class Throughput:
    requests: int
    seconds: float
    in_flight: int
    errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")


async def throughput(
    gateway: GatewaySimulator, make: RequestFactory, count: int, in_flight: int = 64, start: int = 0
) -> Throughput:
    """``count`` requests with ``in_flight`` always outstanding (64 = the bridge's own limit)."""
    numbers = iter(range(start, start + count))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in numbers:
            method, params = make(i)
            errors += _failed(await gateway.request(method, params, timeout=60))

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return Throughput(count, time.perf_counter() - began, in_flight, errors)


def get_order(order_ids: list[str]) -> RequestFactory:
    return lambda i: ("GetOrderByIdV1", {"headers": HEADERS, "orderId": order_ids[i % len(order_ids)]})


def search_orders(table_id: str) -> RequestFactory:
    params = {"headers": HEADERS, "payableOnly": True, "dineIn": {"tableId": table_id}, "cursor": {"limit": 100}}
    return lambda i: ("SearchOrdersV1", params)


def record_payment(order_ids: list[str], run_tag: str) -> RequestFactory:
    """Distinct paymentIntentIds, 1p each, spread over the bench orders (which owe far more)."""

    def make(i: int) -> tuple[str, dict[str, Any]]:
        return (
            "RecordOrderPaymentByIdV1",
            {
                "headers": HEADERS,
                "orderId": order_ids[i % len(order_ids)],
                "paymentIntentId": f"pi_bench_{run_tag}_{i}",
                "paidAmount": {"value": 1, "currencyCode": "GBP"},
            },
        )

    return make


def mixed(order_ids: list[str], run_tag: str, table_id: str) -> RequestFactory:
    """Get, search and pay in turn (the memory soak)."""
    makers = (get_order(order_ids), search_orders(table_id), record_payment(order_ids, run_tag))
    return lambda i: makers[i % 3](i)


_counter = itertools.count()


def unique_tag() -> str:
    return f"{os.getpid()}_{int(time.time())}_{next(_counter)}"
