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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import bigdb, reconnect, wire
from benchmarks.common import describe_machine, machine, rss_source
from epos_bridge.sim.simulator import DEMO_SOFTWARE_HOUSE_ID, DojoSimulator

HERE = Path(__file__).resolve().parent
GUI_FILES = ("epos_bridge/ui/gui.py", "epos_bridge/ui/status_window.py")

FULL = {
    "latency_n": 2000,
    "throughput_n": 20000,
    "soak_n": 50000,
    "reconnect_trials": 4,
    "bigdb_samples": 1000,
    "gui_idle_s": 60.0,
    "gui_drive_s": 20.0,
}
QUICK = {
    "latency_n": 300,
    "throughput_n": 3000,
    "soak_n": 10000,
    "reconnect_trials": 2,
    "bigdb_samples": 200,
    "gui_idle_s": 10.0,
    "gui_drive_s": 5.0,
}

Row = tuple[str, str, str, str, str, str]


def _fmt_ms(value: float) -> str:
    return f"{value:.2f} ms"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


async def wire_benchmarks(folder: Path, sizes: dict[str, Any], out: dict[str, Any], log: Any) -> None:
    env = wire.clean_env(folder)
    venue = folder / "venue.db"
    bench_orders = wire.build_venue(venue, bench_orders=5000)
    table_id = "T12"  # two open orders in the demo venue
    n, m = sizes["latency_n"], sizes["throughput_n"]
    tag = wire.unique_tag()
    async with DojoSimulator(api_key=wire.BENCH_API_KEY, software_house_id=DEMO_SOFTWARE_HOUSE_ID) as sim:
        # --- the baseline: the same driver against a bare websockets echo in its own process
        log("baseline: bare websockets echo (two processes)")
        echo = wire.start_echo_peer(sim, env, folder)
        try:
            await wire.wait_connected(sim.gateway, echo)
            probe = wire.get_order(bench_orders)
            await wire.latency(sim.gateway, probe, max(50, n // 10))  # warm-up
            echo_lat = await wire.latency(sim.gateway, probe, n)
            await wire.throughput(sim.gateway, probe, max(500, m // 10))
            echo_thr = await wire.throughput(sim.gateway, probe, m)
        finally:
            echo.stop()
            await sim.gateway.wait_until(lambda: not sim.gateway.connected, 10, "the echo peer to go")
        out["baseline"] = {"latency": asdict(echo_lat), "throughput": asdict(echo_thr) | {"per_s": echo_thr.per_second}}

        # --- the whole bridge: python -m epos_bridge run --headless in its own process
        log("bridge: python -m epos_bridge run --headless (two processes)")
        bridge = wire.start_bridge(sim, env, folder, venue)
        try:
            await wire.wait_connected(sim.gateway, bridge)
            methods = {
                "GetOrderByIdV1": wire.get_order(bench_orders),
                "SearchOrdersV1": wire.search_orders(table_id),
                "RecordOrderPaymentByIdV1": wire.record_payment(bench_orders, tag),
            }
            out["bridge"] = {}
            offset = 0
            for name, make in methods.items():
                log(f"bridge: {name}")
                await wire.latency(sim.gateway, make, max(50, n // 10), start=offset)
                offset += n
                lat = await wire.latency(sim.gateway, make, n, start=offset)
                offset += n
                thr = await wire.throughput(sim.gateway, make, m, start=offset)
                offset += m
                out["bridge"][name] = {"latency": asdict(lat), "throughput": asdict(thr) | {"per_s": thr.per_second}}

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


def gui_available(root: Path) -> bool:
    return all((root / name).exists() for name in GUI_FILES)


def table(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    base = results["baseline"]
    b_lat, b_thr = base["latency"], base["throughput"]
    rows.append(
        (
            "echo baseline: round trip, 1 in flight",
            f"p50 {_fmt_ms(b_lat['p50_ms'])}",
            f"p99 {_fmt_ms(b_lat['p99_ms'])}",
            "1.00×",
            "baseline",
            "",
        )
    )
    rows.append(("echo baseline: throughput, 64 in flight", f"{b_thr['per_s']:.0f} msg/s", "", "1.00×", "baseline", ""))
    for method, figures in results["bridge"].items():
        lat, thr = figures["latency"], figures["throughput"]
        ratio = lat["p50_ms"] / b_lat["p50_ms"]
        rows.append(
            (
                f"{method}: round trip p50/p99",
                _fmt_ms(lat["p50_ms"]),
                _fmt_ms(lat["p99_ms"]),
                f"{ratio:.2f}× echo p50",
                "p50 ≤ 3× echo",
                _verdict(ratio <= 3),
            )
        )
        share = thr["per_s"] / b_thr["per_s"]
        errs = f" ({thr['errors']} errors)" if thr["errors"] or lat["errors"] else ""
        rows.append(
            (
                f"{method}: throughput, 64 in flight",
                f"{thr['per_s']:.0f} req/s{errs}",
                "",
                f"{share:.0%} of echo",
                "≥ 30% of echo",
                _verdict(share >= 0.30),
            )
        )
    mem = results["memory"]
    rows.append(
        (
            "bridge RSS after warm-up → after soak",
            f"{mem['warm_rss_bytes'] / 2**20:.1f} MiB",
            f"{mem['after_rss_bytes'] / 2**20:.1f} MiB ({mem['requests']} req)",
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
                f"{t['over_step_s'] * 1000:+.0f} ms vs step",
                "≤ step + 200 ms",
                _verdict(t["met"]),
            )
        )
    big = results["bigdb"]
    for name, lat in big["latency"].items():
        rows.append(
            (
                f"100k orders: {name}",
                f"p50 {_fmt_ms(lat['p50_ms'])}",
                f"p99 {_fmt_ms(lat['p99_ms'])}",
                f"{lat['p99_ms'] / bigdb.TARGET_MS:.2f}× target",
                "p99 < 10 ms" if lat["target"] else "(diagnostic)",
                _verdict(lat["p99_ms"] < bigdb.TARGET_MS) if lat["target"] else "",
            )
        )
    if "gui" in results:
        for row in results["gui"].get("rows", []):
            rows.append(tuple(row))  # type: ignore[arg-type]
    return rows


def render(rows: list[Row]) -> str:
    headers = ("figure", "measured", "", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(6)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_plans(results: dict[str, Any]) -> str:
    big = results["bigdb"]
    lines = ["EXPLAIN QUERY PLAN of every SELECT the adapter ran (100k-order venue):"]
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
    }
    with tempfile.TemporaryDirectory(prefix="epos-bridge-bench-") as tmp:
        folder = Path(tmp)
        await wire_benchmarks(folder / "wire", sizes, results, log)
        log("100k-order database: build, latency, query plans")
        (folder / "big").mkdir()
        results["bigdb"] = await bigdb.run(folder / "big", sizes["bigdb_samples"])
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
