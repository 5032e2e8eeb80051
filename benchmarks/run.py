"""``python -m benchmarks.run [--quick] [--out benchmarks/results/latest.json]``

Runs every benchmark, prints one table and writes the figures as JSON. Each figure is a ratio
against a baseline measured in the same run, with the absolute numbers beside it. See
``benchmarks/README.md`` for what each figure means and ``docs/performance.md`` for results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import bigdb, coldstart, reconnect, servers, wire
from benchmarks.common import CPU_SOURCE, describe_machine, machine, rss_source
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

HERE = Path(__file__).resolve().parent
GUI_FILES = ("epos_bridge/ui/gui.py", "epos_bridge/ui/status_window.py")

FULL = {
    "latency_n": 2000,
    "throughput_n": 20000,
    "soak_n": 50000,
    "reconnect_trials": 4,
    "coldstart_trials": 5,
    "bigdb_samples": 1000,
    "server_samples": 1000,
    "gui_idle_s": 60.0,
    "gui_drive_s": 20.0,
}
QUICK = {
    "latency_n": 300,
    "throughput_n": 3000,
    "soak_n": 10000,
    "reconnect_trials": 2,
    "coldstart_trials": 2,
    "bigdb_samples": 200,
    "server_samples": 200,
    "gui_idle_s": 10.0,
    "gui_drive_s": 5.0,
}


@dataclass(frozen=True)
class MethodTargets:
    """Issue 16's targets for one request kind, as ratios to the echo peer in the same run
    (``None``: shown, no target)."""

    p50_ratio: float
    throughput_share: float | None
    cpu_ratio: float | None
    requests_divisor: int = 1
    """Fewer requests for heavy answers (a 20-order answer is ~30 KB for the driver to parse)."""


GET_ORDER = "GetOrderByIdV1"
SEARCH_SMALL = "SearchOrdersV1 (table T12, payableOnly: 2 orders)"
SEARCH_FULL = "SearchOrdersV1 (20 full orders)"
RECORD_PAYMENT = "RecordOrderPaymentByIdV1"
TARGETS = {
    GET_ORDER: MethodTargets(p50_ratio=2.5, throughput_share=0.25, cpu_ratio=8),
    SEARCH_SMALL: MethodTargets(p50_ratio=2.5, throughput_share=None, cpu_ratio=None),
    SEARCH_FULL: MethodTargets(p50_ratio=2.5, throughput_share=0.15, cpu_ratio=25, requests_divisor=4),
    RECORD_PAYMENT: MethodTargets(p50_ratio=6, throughput_share=0.10, cpu_ratio=25),
}
GUI_RSS_TARGET_MIB = 110
GUI_IDLE_CPU_TARGET_PERCENT = 0.3
GUI_STALL_TARGET_MS = 50
TRAY_CONNECTED_TARGET_S = 2.0

Row = tuple[str, str, str, str, str, str, str]


def _fmt_ms(value: float) -> str:
    return f"{value:.2f} ms"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _phase(lat: Any, thr: wire.Throughput) -> dict[str, Any]:
    return {
        "latency": asdict(lat),
        "throughput": asdict(thr) | {"per_s": thr.per_second, "cpu_ms_per_request": thr.cpu_ms_per_request},
    }


async def wire_benchmarks(folder: Path, sizes: dict[str, Any], out: dict[str, Any], log: Any) -> None:
    env = wire.clean_env(folder)
    venue = folder / "venue.db"
    bench_orders = wire.build_venue(venue, bench_orders=5000)
    table_id = "T12"  # two open orders in the demo venue
    n, m = sizes["latency_n"], sizes["throughput_n"]
    tag = wire.unique_tag()
    async with DojoSimulator(api_key=wire.BENCH_API_KEY, software_house_id=DEMO_SOFTWARE_HOUSE_ID) as sim:
        # --- the baseline: the same driver against a bare websockets peer in its own process
        log("baseline: bare websockets peer answering {} (two processes)")
        echo = wire.start_echo_peer(sim, env, folder)
        try:
            await wire.wait_connected(sim.gateway, echo)
            probe = wire.get_order(bench_orders)
            await wire.latency(sim.gateway, probe, max(50, n // 10))  # warm-up
            echo_lat = await wire.latency(sim.gateway, probe, n, peer=echo)
            await wire.throughput(sim.gateway, probe, max(500, m // 10))
            echo_thr = await wire.throughput(sim.gateway, probe, m, peer=echo)
        finally:
            echo.stop()
            await sim.gateway.wait_until(lambda: not sim.gateway.connected, 10, "the echo peer to go")
        out["baseline"] = _phase(echo_lat, echo_thr)

        # --- the whole bridge: python -m epos_bridge run --headless in its own process
        log("bridge: python -m epos_bridge run --headless (two processes)")
        bridge = wire.start_bridge(sim, env, folder, venue)
        try:
            await wire.wait_connected(sim.gateway, bridge)
            methods = {
                GET_ORDER: wire.get_order(bench_orders),
                SEARCH_SMALL: wire.search_orders(table_id),
                SEARCH_FULL: wire.search_full_orders(),
                RECORD_PAYMENT: wire.record_payment(bench_orders, tag),
            }
            out["bridge"] = {}
            offset = 0
            for name, make in methods.items():
                log(f"bridge: {name}")
                divisor = TARGETS[name].requests_divisor
                count, many = n // divisor, m // divisor
                await wire.latency(sim.gateway, make, max(50, count // 10), start=offset)
                offset += count
                lat = await wire.latency(sim.gateway, make, count, start=offset, peer=bridge)
                offset += count
                thr = await wire.throughput(sim.gateway, make, many, start=offset, peer=bridge)
                offset += many
                out["bridge"][name] = _phase(lat, thr)

            # --- memory: RSS after that warm-up, then after soak_n more requests
            log(f"memory: {sizes['soak_n']} mixed requests at 64 in flight")
            warm = bridge.rss()
            trail = [warm]
            soak = wire.mixed(bench_orders, tag + "_soak", table_id)
            chunk = max(1, sizes["soak_n"] // 5)
            done = 0
            errors = 0
            while done < sizes["soak_n"]:
                size = min(chunk, sizes["soak_n"] - done)
                result = await wire.throughput(sim.gateway, soak, size, start=done)
                errors += result.errors
                done += size
                trail.append(bridge.rss())
            out["memory"] = {
                "source": rss_source(),
                "warm_rss_bytes": warm,
                "after_rss_bytes": trail[-1],
                "trail_rss_bytes": trail,
                "requests": done,
                "errors": errors,
                "growth": (trail[-1] - warm) / warm,
            }

            # --- reconnect
            log(f"reconnect: {sizes['reconnect_trials']} trials")
            trials = await reconnect.run(sim, bridge, bench_orders[0], sizes["reconnect_trials"])
            out["reconnect"] = [asdict(t) | {"over_step_s": t.over_step_s, "met": t.met} for t in trials]
        finally:
            bridge.stop()
        await sim.gateway.wait_until(lambda: not sim.gateway.connected, 20, "the bridge to go")

        # --- cold start: a new process each trial, to "Connected" and to the first answer
        trials_n = sizes["coldstart_trials"]
        coldstart.compile_bytecode()
        starters = {
            "echo peer": lambda: wire.start_echo_peer(sim, env, folder),
            "headless bridge": lambda: wire.start_bridge(sim, env, folder, venue),
        }
        if gui_available(HERE.parent):
            starters["tray app"] = lambda: wire.start_tray(sim, env, folder, venue)
        out["coldstart"] = {}
        for name, start in starters.items():
            log(f"cold start: {name}, {trials_n} trials")
            starts = await coldstart.run(sim, start, bench_orders[0], trials_n)
            out["coldstart"][name] = {
                "trials": [asdict(t) for t in starts.trials],
                "connected_median_s": starts.connected_median_s,
                "connected_max_s": starts.connected_max_s,
                "answer_median_s": starts.answer_median_s,
                "answer_max_s": starts.answer_max_s,
            }


def gui_available(root: Path) -> bool:
    return all((root / name).exists() for name in GUI_FILES)


def _cpu(ms: float | None, base: float | None) -> str:
    if ms is None:
        return ""
    ratio = f" ({ms / base:.0f}× echo)" if base else ""
    return f"{ms * 1000:.0f} µs/req{ratio}"


def _cpu_ratio(ms: float | None, base: float | None) -> float:
    return ms / base if ms is not None and base else float("inf")


def table(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    base = results["baseline"]
    b_lat, b_thr = base["latency"], base["throughput"]
    b_cpu_lat, b_cpu_thr = b_lat.get("cpu_ms_per_request"), b_thr.get("cpu_ms_per_request")
    rows.append(
        (
            "echo baseline: round trip, 1 in flight",
            f"p50 {_fmt_ms(b_lat['p50_ms'])}",
            f"p99 {_fmt_ms(b_lat['p99_ms'])}",
            _cpu(b_cpu_lat, None),
            "1.00×",
            "baseline",
            "",
        )
    )
    rows.append(
        (
            "echo baseline: throughput, 64 in flight",
            f"{b_thr['per_s']:.0f} msg/s",
            "",
            _cpu(b_cpu_thr, None),
            "1.00×",
            "baseline",
            "",
        )
    )
    for method, figures in results["bridge"].items():
        goal = TARGETS.get(method, MethodTargets(p50_ratio=2.5, throughput_share=None, cpu_ratio=None))
        lat, thr = figures["latency"], figures["throughput"]
        cpu_lat, cpu_thr = lat.get("cpu_ms_per_request"), thr.get("cpu_ms_per_request")
        ratio = lat["p50_ms"] / b_lat["p50_ms"]
        rows.append(
            (
                f"{method}: round trip p50/p99",
                _fmt_ms(lat["p50_ms"]),
                _fmt_ms(lat["p99_ms"]),
                _cpu(cpu_lat, b_cpu_lat),
                f"{ratio:.2f}× echo p50",
                f"p50 ≤ {goal.p50_ratio:g}× echo",
                _verdict(ratio <= goal.p50_ratio),
            )
        )
        share = thr["per_s"] / b_thr["per_s"]
        errs = f" ({thr['errors']} errors)" if thr["errors"] or lat["errors"] else ""
        rows.append(
            (
                f"{method}: throughput, 64 in flight",
                f"{thr['per_s']:.0f} req/s{errs}",
                "",
                _cpu(cpu_thr, b_cpu_thr),
                f"{share:.1%} of echo",
                f"≥ {goal.throughput_share:.0%} of echo" if goal.throughput_share is not None else "(diagnostic)",
                _verdict(share >= goal.throughput_share) if goal.throughput_share is not None else "",
            )
        )
        if goal.cpu_ratio is not None:
            worst = max(_cpu_ratio(cpu_lat, b_cpu_lat), _cpu_ratio(cpu_thr, b_cpu_thr))
            rows.append(
                (
                    f"{method}: CPU per request (1 / 64 in flight)",
                    f"{(cpu_lat or 0) * 1000:.0f} µs",
                    f"{(cpu_thr or 0) * 1000:.0f} µs",
                    "",
                    f"{worst:.1f}× echo (worse of two)",
                    f"≤ {goal.cpu_ratio:g}× echo",
                    _verdict(worst <= goal.cpu_ratio),
                )
            )
    mem = results["memory"]
    rows.append(
        (
            "bridge RSS after warm-up → after soak",
            f"{mem['warm_rss_bytes'] / 2**20:.1f} MiB",
            f"{mem['after_rss_bytes'] / 2**20:.1f} MiB ({mem['requests']} req)",
            "",
            f"{mem['growth']:+.1%}",
            "≤ +10%",
            _verdict(mem["growth"] <= 0.10),
        )
    )
    for i, t in enumerate(results["reconnect"], 1):
        rows.append(
            (
                f"reconnect trial {i}: back → first answer",
                f"{t['to_first_answer_s'] * 1000:.0f} ms",
                f"step {t['step_s']:.1f} s",
                "",
                f"{t['over_step_s'] * 1000:+.0f} ms vs step",
                "≤ step + 200 ms",
                _verdict(t["met"]),
            )
        )
    starts = results.get("coldstart", {})
    echo_start = starts.get("echo peer")
    for name, figures in starts.items():
        versus = (
            f"{figures['connected_median_s'] / echo_start['connected_median_s']:.1f}× echo"
            if echo_start and name != "echo peer"
            else "baseline"
        )
        tray = name == "tray app"
        rows.append(
            (
                f"cold start, {name}: start → Connected / first answer (median)",
                f"{figures['connected_median_s'] * 1000:.0f} ms",
                f"{figures['answer_median_s'] * 1000:.0f} ms",
                f"max {figures['connected_max_s'] * 1000:.0f} / {figures['answer_max_s'] * 1000:.0f} ms",
                versus,
                f"Connected ≤ {TRAY_CONNECTED_TARGET_S:g} s" if tray else "",
                _verdict(figures["connected_max_s"] <= TRAY_CONNECTED_TARGET_S) if tray else "",
            )
        )
    big = results["bigdb"]
    label = f"{big['orders'] // 1000}k orders" if big["orders"] < 10**6 else f"{big['orders'] // 10**6}M orders"
    rows.append(
        (
            f"{label}: build the fixture ({big['open']} open)",
            f"{big['build_s']:.1f} s",
            f"{big['file_bytes'] / 2**20:.0f} MiB",
            "",
            "",
            "(diagnostic)",
            "",
        )
    )
    rows.append(
        (
            f"{label}: open + migrate (schema {big['from_schema']} → {big['to_schema']}) / open again",
            f"{big['open_and_migrate_s'] * 1000:.0f} ms",
            f"{big['open_s'] * 1000:.0f} ms",
            "",
            f"{big['open_and_migrate_s'] / big['open_target_s']:.2f}× target",
            f"< {big['open_target_s']:g} s",
            _verdict(big["open_and_migrate_s"] < big["open_target_s"]),
        )
    )
    for name, lat in big["latency"].items():
        target = lat["target_ms"]
        rows.append(
            (
                f"{label}: {name}",
                f"p50 {_fmt_ms(lat['p50_ms'])}",
                f"p99 {_fmt_ms(lat['p99_ms'])}",
                _cpu(lat.get("cpu_ms_per_request"), None),
                f"{lat['p99_ms'] / target:.2f}× target",
                f"p99 < {target:g} ms",
                _verdict(lat["p99_ms"] < target),
            )
        )
    if "servers" in results:
        rows.extend(servers.rows(results["servers"]))
    if "gui" in results:
        for row in results["gui"].get("rows", []):
            rows.append(tuple(row))  # type: ignore[arg-type]
    return rows


def render(rows: list[Row]) -> str:
    headers = ("figure", "measured", "", "far-end CPU", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(7)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_plans(results: dict[str, Any]) -> str:
    big = results["bigdb"]
    lines = [f"EXPLAIN QUERY PLAN of every SELECT the adapter ran ({big['orders']:,}-order venue):"]
    for plan in big["plans"]:
        flag = "  <-- FULL TABLE SCAN" if plan["full_scans"] else ""
        lines.append(f"[{plan['scenario']}] {plan['sql']}{flag}")
        lines += [f"    {step}" for step in plan["plan"]]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "sizes": sizes,
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        "process_layout": "driver (DojoSimulator) in the benchmark process; echo peer or headless bridge in a"
        " second process, same websockets options",
        "cpu_source": CPU_SOURCE,
    }
    with tempfile.TemporaryDirectory(prefix="epos-bridge-bench-") as tmp:
        folder = Path(tmp)
        await wire_benchmarks(folder / "wire", sizes, results, log)
        log(f"{bigdb.ORDERS:,}-order database: build, open + migrate, latency, query plans")
        (folder / "big").mkdir()
        results["bigdb"] = await bigdb.run(folder / "big", sizes["bigdb_samples"])
        log("a POS on MariaDB and PostgreSQL beside the same POS in a file")
        (folder / "servers").mkdir()
        results["servers"] = await servers.run(folder / "servers", int(sizes["server_samples"]))
        root = HERE.parent
        if gui_available(root):
            log("GUI: event-loop stall and idle CPU")
            from benchmarks import gui

            try:
                results["gui"] = await gui.run(folder / "gui", sizes, results)
            except Exception as exc:  # the other figures still count; say what went wrong
                results["gui_error"] = f"{type(exc).__name__}: {exc}"
        else:
            results["gui_skipped"] = f"{' and '.join(GUI_FILES)} not present when this ran"
    results["load_average_at_end"] = os.getloadavg()
    results["elapsed_s"] = time.monotonic() - started
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="epos-bridge benchmarks")
    parser.add_argument("--quick", action="store_true", help="small counts, for CI smoke (about 2 minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json", help="where to write JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(f"epos-bridge benchmarks ({results['mode']} mode, {results['elapsed_s']:.0f} s)")
    print(f"machine: {describe_machine(results['machine'])}")
    load_start = ", ".join(f"{x:.2f}" for x in results["load_average_at_start"])
    load_end = ", ".join(f"{x:.2f}" for x in results["load_average_at_end"])
    print(f"load average: {load_start} at start, {load_end} at end")
    print(f"layout: {results['process_layout']}")
    print(f"far-end CPU: user + system, every thread, from {results['cpu_source']}; per request")
    print()
    print(render(table(results)))
    print()
    print(render_plans(results))
    if "gui_error" in results:
        print(f"\nGUI benchmark failed: {results['gui_error']}")
    if "gui_skipped" in results:
        print(f"\nGUI benchmark skipped: {results['gui_skipped']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
