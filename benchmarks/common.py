"""Small shared pieces: percentiles, the machine description, resident memory and CPU time of a process."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); ``nan`` for no samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int = 0
    cpu_ms_per_request: float | None = None
    """CPU time (user + system, every thread) the far end spent per request, in milliseconds."""

    @classmethod
    def of(cls, samples_ms: list[float], errors: int = 0, cpu_s: float | None = None) -> Latency:
        return cls(
            count=len(samples_ms),
            p50_ms=percentile(samples_ms, 50),
            p99_ms=percentile(samples_ms, 99),
            mean_ms=statistics.fmean(samples_ms) if samples_ms else float("nan"),
            max_ms=max(samples_ms) if samples_ms else float("nan"),
            errors=errors,
            cpu_ms_per_request=cpu_s * 1000 / len(samples_ms) if cpu_s is not None and samples_ms else None,
        )


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of ``pid`` (default: this process): psutil if installed, else /proc."""
    pid = os.getpid() if pid is None else pid
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    statm = Path(f"/proc/{pid}/statm").read_text().split()
    return int(statm[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of the whole process ``pid`` (every thread, live or ended).

    Linux: the process's CPU-time clock (``clock_getcpuclockid``), nanosecond resolution; the
    10 ms ticks of ``/proc/PID/stat`` would drown a 20 µs echo. Elsewhere: psutil.
    """
    pid = os.getpid() if pid is None else pid
    if sys.platform.startswith("linux"):
        # The clock id clock_getcpuclockid(pid) returns: CPUCLOCK_SCHED (2) of the whole process.
        return time.clock_gettime(((~pid) << 3) | 2)
    import psutil  # type: ignore[import-not-found]

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


CPU_SOURCE = "the process CPU-time clock (clock_getcpuclockid)" if sys.platform.startswith("linux") else "psutil"


def rss_source() -> str:
    try:
        import psutil  # type: ignore[import-not-found]  # noqa: F401

        return "psutil"
    except ImportError:
        return "/proc/PID/status VmRSS"


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, Python, SQLite, websockets."""
    import websockets

    cpu_model, cpu_mhz = "unknown", None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model == "unknown":
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and cpu_mhz is None:
                cpu_mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpu_mhz": cpu_mhz,
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_bytes": mem_total,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "websockets": websockets.__version__,
    }


def describe_machine(info: dict[str, Any]) -> str:
    mem = info["memory_total_bytes"]
    mem_text = f"{mem / 2**30:.1f} GiB" if mem else "unknown"
    mhz = f" @ {info['cpu_mhz']:.0f} MHz" if info["cpu_mhz"] else ""
    return (
        f"{info['cpu_model']}{mhz}, nproc {info['nproc']}, memory {mem_text}, {info['os']}; "
        f"Python {info['python']} ({info['python_implementation']}), SQLite {info['sqlite']}, "
        f"websockets {info['websockets']}"
    )
