"""The PyInstaller bundle on Linux, run as a user would: ``--version``, ``doctor`` and the demo.

Building takes minutes, so this runs only when asked:

* ``EPOS_BRIDGE_BUNDLE=/path/to/epos-bridge``: test that prebuilt executable;
* else ``dist/epos-bridge/epos-bridge`` if ``installer/linux/build.sh`` already made it;
* else ``EPOS_BRIDGE_BUILD_BUNDLE=1`` builds it first (the build time is printed and recorded);
* otherwise the tests are skipped, saying how to run them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from epos_bridge import __version__
from epos_bridge.testing.processes import isolated_env
from tests.helpers.child import init_demo_venue

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "dist" / "epos-bridge" / "epos-bridge"
CHECK_LINE = re.compile(r"^(PASS|FAIL)  [^:]+: ", re.MULTILINE)
DEMO_REQUESTS = 10
"""Requests the bundled demo must have served before it is stopped: a few of its flows."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle is built and run on Linux"),
]


@pytest.fixture(scope="module")
def bundle() -> Path:
    given = os.environ.get("EPOS_BRIDGE_BUNDLE")
    if given:
        path = Path(given)
        assert path.is_file(), f"EPOS_BRIDGE_BUNDLE={given} is not a file"
        return path
    if os.environ.get("EPOS_BRIDGE_BUILD_BUNDLE") == "1":
        started = time.monotonic()
        result = subprocess.run(
            ["bash", str(ROOT / "installer" / "linux" / "build.sh")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1100,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 0, f"build failed after {elapsed:.0f} s\n{result.stdout}\n{result.stderr}"
        print(f"\nLinux bundle built in {elapsed:.0f} s\n{result.stdout}", file=sys.stderr)
        return BUILT
    if BUILT.is_file():
        return BUILT
    pytest.skip(
        "no Linux bundle: building takes minutes, so set EPOS_BRIDGE_BUILD_BUNDLE=1 to build it here, "
        "run installer/linux/build.sh first, or point EPOS_BRIDGE_BUNDLE at a built epos-bridge"
    )


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """No inherited settings, keyring or user folders; Qt offscreen."""
    return isolated_env(tmp_path)


def test_version(bundle: Path, clean_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(bundle), "--version"], env=clean_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"epos-bridge {__version__}"


def test_doctor_prints_its_check_lines(bundle: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    """With a venue database made by the bundle itself and a Dojo that is not there, doctor fails —
    but it must run, pass what works, and say what to fix, one line per check."""
    db = init_demo_venue(tmp_path / "venue" / "demo-venue.db", clean_env, [str(bundle)], timeout=120)
    env = dict(
        clean_env,
        EPOS_BRIDGE_API_KEY="sk_sandbox_bundle_doctor_0123456789",
        EPOS_BRIDGE_SOFTWARE_HOUSE_ID="bundle-test",
        EPOS_BRIDGE_DB=str(db),
        EPOS_BRIDGE_DATA_DIR=str(tmp_path / "data"),
        EPOS_BRIDGE_ALLOW_INSECURE="1",
        EPOS_BRIDGE_WS_URL="ws://127.0.0.1:9/epos",  # the discard port: nothing listens
        EPOS_BRIDGE_API_URL="http://127.0.0.1:9",
    )
    result = subprocess.run([str(bundle), "doctor"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in (0, 1), f"{result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = CHECK_LINE.findall(result.stdout)
    assert len(lines) >= 3, result.stdout + result.stderr
    assert "PASS  API key:" in result.stdout
    assert "PASS  POS database:" in result.stdout, result.stdout
    assert "sk_sandbox_bundle_doctor_0123456789" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_demo_runs_offscreen_and_stops_on_sigterm(bundle: Path, clean_env: dict[str, str], tmp_path: Path) -> None:
    """The demo's venue database, simulator and flows all come from inside the bundle."""
    stderr_path = tmp_path / "demo.stderr"

    def served() -> int:
        return len(re.findall(r"\w+V1 id=\S+ ok ", stderr_path.read_text(errors="replace")))

    with stderr_path.open("wb") as stderr, (tmp_path / "demo.stdout").open("wb") as stdout:
        process = subprocess.Popen(
            [str(bundle), "demo", "--flow-interval", "0.5"],
            env=clean_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            # A few flows' worth of requests served, however long the machine takes (60 s is a guard).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None and served() < DEMO_REQUESTS:
                time.sleep(0.2)
            assert process.poll() is None, stderr_path.read_text(errors="replace")
            assert served() >= DEMO_REQUESTS, stderr_path.read_text(errors="replace")
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    log = stderr_path.read_text(errors="replace")
    assert code == 0, log
    assert re.search(r"\w+V1 id=\S+ ok \d+\.\d ms", log), f"no request was served in the demo:\n{log}"
    assert "Traceback" not in log, log
