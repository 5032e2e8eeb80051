"""The tray app in its own process, measuring itself: ``python -m benchmarks.gui_peer ARGS``.

Offscreen Qt, qasync loop, the real :class:`epos_bridge.app.Bridge` behind
:func:`epos_bridge.ui.gui.run_gui` (status window and tray built exactly as the app builds
them). It reports on stdout, one JSON line per phase, on its own clock:

1. ``READY`` once connected to the gateway;
2. idle CPU: ``time.process_time`` over ``--idle-s`` seconds of wall time, nothing sent, no probe;
3. idle stall baseline: a 10 ms ``QTimer`` probe for ``--probe-idle-s`` seconds (longest gap);
4. ``DRIVE``: the same probe for ``--drive-s`` seconds while the benchmark sends 200 req/s;
5. resident memory, then Quit (the bridge stops cleanly).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pydantic import SecretStr
from PySide6.QtCore import Qt, QTimer

from benchmarks.common import percentile, rss_bytes
from epos_bridge.app import Bridge
from epos_bridge.config import BridgeSettings
from epos_bridge.gateway.connection_state import ConnectionState
from epos_bridge.host.logs import configure_logging
from epos_bridge.ui.gui import GuiParts, run_gui

TICK_MS = 10


def say(kind: str, **figures: Any) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **figures}) + "\n")
    sys.stdout.flush()


class StallProbe:
    """A 10 ms precise QTimer; records the gap between consecutive ticks."""

    def __init__(self) -> None:
        self.gaps_ms: list[float] = []
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> dict[str, float]:
        self._timer.stop()
        return {
            "ticks": len(self.gaps_ms),
            "max_gap_ms": max(self.gaps_ms, default=float("nan")),
            "p99_gap_ms": percentile(self.gaps_ms, 99),
            "p50_gap_ms": percentile(self.gaps_ms, 50),
        }

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps_ms.append((now - self._last) * 1000)
        self._last = now


async def measure(parts: GuiParts, args: argparse.Namespace) -> None:
    bridge = parts.bridge
    assert isinstance(bridge, Bridge)
    deadline = time.monotonic() + 30
    while bridge.session.status.state is not ConnectionState.CONNECTED:
        if time.monotonic() > deadline:
            say("ERROR", message="not connected within 30 s")
            parts.quit()
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # registration and first paint settle
    say("READY")
    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.sleep(args.idle_s)
    idle_cpu = (time.process_time() - cpu) / (time.monotonic() - wall)
    probe = StallProbe()
    probe.start()
    await asyncio.sleep(args.probe_idle_s)
    idle_probe = probe.stop()
    say("IDLE", cpu_percent=idle_cpu * 100, rss_bytes=rss_bytes(), **idle_probe)
    served = 0

    def count(_served: object) -> None:
        nonlocal served
        served += 1

    bridge.on_served(count)
    probe.start()
    wall, cpu = time.monotonic(), time.process_time()
    say("DRIVE")
    await asyncio.sleep(args.drive_s)
    elapsed = time.monotonic() - wall
    loaded_cpu = (time.process_time() - cpu) / elapsed
    loaded = probe.stop()
    say(
        "LOADED",
        cpu_percent=loaded_cpu * 100,
        seconds=elapsed,
        served=served,
        rss_bytes=rss_bytes(),
        **loaded,
    )
    parts.quit()


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("ws_url", "api_url", "api_key", "software_house_id", "db", "data_dir"):
        parser.add_argument(f"--{name.replace('_', '-')}", required=True)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--probe-idle-s", type=float, default=3.0)
    parser.add_argument("--drive-s", type=float, default=20.0)
    args = parser.parse_args()
    configure_logging([args.api_key])
    settings = BridgeSettings(
        allow_insecure=True,
        software_house_id=args.software_house_id,
        ws_url=args.ws_url,
        api_url=args.api_url,
        db_path=Path(args.db),
        data_dir=Path(args.data_dir),
        api_key=SecretStr(args.api_key),
        api_key_source="environment",
    )

    @contextlib.asynccontextmanager
    async def open_bridge() -> AsyncIterator[Bridge]:
        yield Bridge(settings)

    tasks: set[asyncio.Task[None]] = set()

    def started(parts: GuiParts) -> None:
        task = asyncio.get_running_loop().create_task(measure(parts, args))
        tasks.add(task)

    return run_gui(
        open_bridge, on_started=started, settings_path=Path(args.data_dir) / "settings.toml", argv=[sys.argv[0]]
    )


if __name__ == "__main__":
    sys.exit(main())
