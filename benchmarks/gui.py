"""GUI figures: event-loop stall while 200 req/s arrive, idle CPU, resident memory.

The tray app runs in its own process (:mod:`benchmarks.gui_peer`) and measures itself; this
side plays Dojo at a steady 200 requests per second (open loop: a request every 5 ms whether or
not the previous one was answered, as Dojo's traffic is). Baselines from the same run: the
probe's own longest gap while the app is idle, and the headless bridge's RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import wire
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

RATE_PER_S = 200
STALL_TARGET_NOTE = "longest gap between 10 ms ticks"
STALL_TARGET_MS = 50
IDLE_CPU_TARGET_PERCENT = 0.3
RSS_TARGET_MIB = 110


async def _lines(process: asyncio.subprocess.Process) -> Any:
    assert process.stdout is not None
    async for raw in process.stdout:
        line = raw.decode().strip()
        if line.startswith("{"):
            yield json.loads(line)


async def drive(sim: DojoSimulator, make: wire.RequestFactory, seconds: float) -> dict[str, Any]:
    """Send at RATE_PER_S for ``seconds``; count answers and errors."""
    pending: set[asyncio.Task[dict[str, Any]]] = set()
    interval = 1 / RATE_PER_S
    began = time.monotonic()
    i = 0
    while (now := time.monotonic()) - began < seconds:
        method, params = make(i)
        task = asyncio.create_task(sim.gateway.request(method, params, timeout=30))
        pending.add(task)
        i += 1
        await asyncio.sleep(max(0.0, began + i * interval - time.monotonic()))
    done = await asyncio.gather(*pending, return_exceptions=True)
    errors = sum(1 for r in done if isinstance(r, BaseException) or "error" in r)
    return {"sent": i, "errors": errors, "seconds": now - began}


async def run(folder: Path, sizes: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - setting up a temp folder, once
    env = wire.clean_env(folder)
    env["QT_QPA_PLATFORM"] = "offscreen"
    venue = folder / "venue.db"
    orders = wire.build_venue(venue, bench_orders=2000)
    make = wire.mixed(orders, wire.unique_tag() + "_gui", "T12")
    figures: dict[str, Any] = {}
    async with DojoSimulator(api_key=wire.BENCH_API_KEY, software_house_id=DEMO_SOFTWARE_HOUSE_ID) as sim:
        log = (folder / "gui.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.gui_peer",
            "--ws-url", sim.ws_url, "--api-url", sim.api_url, "--api-key", wire.BENCH_API_KEY,
            "--software-house-id", DEMO_SOFTWARE_HOUSE_ID, "--db", str(venue), "--data-dir", str(folder / "data"),
            "--idle-s", str(sizes["gui_idle_s"]), "--drive-s", str(sizes["gui_drive_s"]),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        try:
            async with asyncio.timeout(sizes["gui_idle_s"] + sizes["gui_drive_s"] + 90):
                async for message in _lines(process):
                    kind = message.pop("kind")
                    if kind == "DRIVE":
                        figures["drive"] = await drive(sim, make, sizes["gui_drive_s"] - 0.5)
                    elif kind in ("IDLE", "LOADED"):
                        figures[kind.lower()] = message
                    elif kind == "ERROR":
                        raise RuntimeError(message)
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with contextlib.suppress(ProcessLookupError):
                    await process.wait()
            log.close()
    if "idle" not in figures or "loaded" not in figures:
        tail = (folder / "gui.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the GUI process ended early (exit {process.returncode}); its log ends:\n{tail}")
    idle, loaded = figures["idle"], figures["loaded"]
    headless_rss = results.get("memory", {}).get("after_rss_bytes")
    driven = figures.get("drive", {})
    served = loaded.get("served") or 0
    cpu_per_request = (
        f"{loaded['cpu_percent'] / 100 * loaded['seconds'] / served * 1e6:.0f} µs/req"
        if served and "seconds" in loaded
        else ""
    )
    rss_mib = loaded["rss_bytes"] / 2**20
    rows = [
        (
            "GUI: event-loop stall at 200 req/s",
            f"max gap {loaded['max_gap_ms']:.1f} ms",
            f"p99 gap {loaded['p99_gap_ms']:.1f} ms",
            f"idle max {idle['max_gap_ms']:.1f} ms",
            f"{loaded['max_gap_ms'] / idle['max_gap_ms']:.1f}× idle max gap",
            f"max gap < {STALL_TARGET_MS} ms",
            "met" if loaded["max_gap_ms"] < STALL_TARGET_MS else "MISSED",
        ),
        (
            f"GUI: idle CPU over {sizes['gui_idle_s']:.0f} s",
            f"{idle['cpu_percent']:.2f}% of one core",
            f"loaded {loaded['cpu_percent']:.0f}% ({served} served, {driven.get('errors', 0)} errors)",
            cpu_per_request,
            "",
            f"≤ {IDLE_CPU_TARGET_PERCENT}% of a core",
            "met" if idle["cpu_percent"] <= IDLE_CPU_TARGET_PERCENT else "MISSED",
        ),
        (
            "GUI: RSS after the 200 req/s drive",
            f"{rss_mib:.1f} MiB",
            f"idle {idle['rss_bytes'] / 2**20:.1f} MiB",
            "",
            f"{loaded['rss_bytes'] / headless_rss:.2f}× headless" if headless_rss else "",
            f"≤ {RSS_TARGET_MIB} MiB",
            "met" if rss_mib <= RSS_TARGET_MIB else "MISSED",
        ),
    ]
    figures["rows"] = rows
    return figures
