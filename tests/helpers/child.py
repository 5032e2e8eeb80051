"""Child ``python -m epos_bridge`` processes for tests: output to files, never pipes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from epos_bridge.testing.processes import isolated_env

THIS_PYTHON = (sys.executable, "-m", "epos_bridge")
"""How a test runs the bridge's CLI from source; the bundle tests pass the built executable."""


def init_demo_venue(
    path: Path,
    env: dict[str, str],
    command: Sequence[str] = THIS_PYTHON,
    timeout: float = 60,
    *,
    mapping: str | None = None,
) -> Path:
    """A demo venue made through the real CLI (``epos-bridge db init PATH --demo``); with
    ``mapping``, a POS's own database shaped as that shipped mapping's POS (``--adapter sqlmap``)."""
    shaped = ["--adapter", "sqlmap", "--mapping", mapping] if mapping else []
    result = subprocess.run(
        [*command, "db", "init", str(path), "--demo", *shaped],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return path


def db_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``epos-bridge db ARGS`` run to its end, in an environment of its own under ``tmp_path``."""
    return subprocess.run(
        [*THIS_PYTHON, "db", *args], env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )


class CliProcess:
    """``python -m epos_bridge ARGS`` with stdout and stderr going to files in ``folder``.

    Files rather than pipes: nothing can block on a full pipe, and the test's event loop (which
    runs the simulator) is never blocked waiting on the child.
    """

    def __init__(self, args: list[str], env: dict[str, str], folder: Path, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / f"{name}.stdout"
        self.stderr_path = folder / f"{name}.stderr"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [*THIS_PYTHON, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the process exited ({self.process.returncode}) while waiting for {what}\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\nstderr:\n{self.stderr}")
            await asyncio.sleep(0.02)

    async def exited(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait for the process to end by itself; its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s\nstderr:\n{self.stderr}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    async def terminate(self, timeout: float = 10.0) -> tuple[int, float]:  # noqa: ASYNC109
        """SIGTERM, then wait; returns (exit code, seconds from the signal to the exit)."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        while self.process.poll() is None:
            if time.monotonic() - sent > timeout:
                raise AssertionError(f"no exit within {timeout} s of SIGTERM\nstderr:\n{self.stderr}")
            await asyncio.sleep(0.01)
        return self.process.returncode, time.monotonic() - sent

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stdout.close()
        self._stderr.close()
