"""Another local user can neither squat the single-instance lock or doorbell (and so keep the
bridge from starting) nor send the running tray app commands.

Real processes on Linux: the tray app (offscreen) as this user, and the other user's attempts
as a separate process running under a different uid (``subprocess`` with ``user=``/``group=``,
which needs root; the test skips only where it cannot switch user). The folders above the
bridge's are made world-traversable, as a home folder on a shared till often is, so every
refusal comes from the bridge's own 0700/0600 modes, not from an unreachable parent.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from epos_bridge.host.instance import OWNER_FILE_NAME
from epos_bridge.sim.simulator import DojoSimulator
from epos_bridge.testing.processes import simulator_env
from tests.e2e.conftest import CliProcess, run_cli

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="POSIX users and modes"),
    pytest.mark.timeout(120),
]

OTHER_UID = 54321


def other_user() -> tuple[int, str]:
    """A uid that is not ours, and a Python that uid can run (only the standard library)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    try:
        pwd.getpwuid(OTHER_UID)
    except KeyError:
        pass  # nobody has it: free to borrow
    else:
        pytest.skip(f"uid {OTHER_UID} is a real user here; not borrowing it")
    for python in (sys._base_executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if not python:
            continue
        try:
            probe = subprocess.run(
                [python, "-I", "-S", "-c", "pass"],
                user=OTHER_UID,
                group=OTHER_UID,
                extra_groups=[],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except PermissionError:  # this interpreter lives in a folder the other user cannot enter
            continue
        if probe.returncode == 0:
            return OTHER_UID, python
    pytest.skip("no Python interpreter the other user may run")


def as_other_user(python: str, code: str, **env: str) -> dict[str, str]:
    """Run ``code`` as the other user; it prints one JSON object of what each attempt gave."""
    result = subprocess.run(
        [python, "-I", "-S", "-c", textwrap.dedent(code)],
        user=OTHER_UID,
        group=OTHER_UID,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout)
    return found


ATTEMPTS = """
    import errno, json, os, socket
    out = {}
    def attempt(name, action):
        try:
            action()
            out[name] = "done"
        except OSError as exc:
            out[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    def make_dir(path):
        os.mkdir(path)
    def make_file(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    def listen(path):
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.listen(1)
        os.chmod(path, 0o777)
    def connect(path):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"raise\\n")
        s.close()
    def read(path):
        with open(path) as f:
            f.read()
    for item in json.loads(os.environ["ATTEMPTS"]):
        attempt(item[0], lambda: globals()[item[1]](item[2]))
    print(json.dumps(out))
"""


def attempts(*items: tuple[str, str, str | Path]) -> str:
    return json.dumps([[name, action, str(path)] for name, action, path in items])


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A world-traversable folder for this user's HOME, data and runtime folders."""
    base = Path(tempfile.mkdtemp(prefix="eb-shared-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def old_predictable_name(data_dir: Path) -> str:
    """Where the doorbell used to be: a name any user could compute, in the shared /tmp."""
    folder = os.path.normcase(str(data_dir.expanduser().resolve()))
    return "/tmp/epos-bridge-" + hashlib.sha256(folder.encode("utf-8")).hexdigest()[:16]


async def test_another_user_can_neither_squat_nor_command_the_bridge(
    shared_base: Path,
    simulator: DojoSimulator,
    demo_db: Path,
    api_key: str,
    spawn: Callable[..., CliProcess],
) -> None:
    _uid, python = other_user()
    data_dir = shared_base / "data"
    runtime = shared_base / "run-user"
    runtime.mkdir(mode=0o700)  # what logind makes of /run/user/<uid>
    env = simulator_env(shared_base / "home", simulator, api_key=api_key, db=demo_db, data_dir=data_dir)
    (shared_base / "home").chmod(0o755)
    env.update({"QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(runtime), "TMPDIR": "/tmp"})
    squat = old_predictable_name(data_dir)
    shutil.rmtree(squat, ignore_errors=True)

    # Before the bridge ever ran: the other user tries to take every name first.
    before = as_other_user(
        python,
        ATTEMPTS,
        ATTEMPTS=attempts(
            ("data folder", "make_dir", data_dir),
            ("runtime folder", "make_dir", runtime / "epos-bridge"),
            ("old doorbell name in /tmp", "listen", squat),
        ),
    )
    assert before["data folder"] == "EACCES"
    assert before["runtime folder"] == "EACCES"
    assert before["old doorbell name in /tmp"] == "done"  # possible, and now harmless

    first = spawn([], env, name="tray")
    try:
        await first.wait_for(lambda: simulator.gateway.connected, 30, "the tray app to connect")
        owner = json.loads((data_dir / OWNER_FILE_NAME).read_text())
        doorbell = Path(owner["raise_channel"])
        assert doorbell.parent == runtime / "epos-bridge"
        await first.wait_for(doorbell.exists, 10, "the doorbell socket")

        during = as_other_user(
            python,
            ATTEMPTS,
            ATTEMPTS=attempts(
                ("ring the doorbell", "connect", doorbell),
                ("read the owner record", "read", data_dir / OWNER_FILE_NAME),
                ("make a lock file", "make_file", data_dir / "instance.lock.squat"),
                ("make a socket beside it", "listen", doorbell.parent / "squat.sock"),
            ),
        )
        assert during == {
            "ring the doorbell": "EACCES",
            "read the owner record": "EACCES",
            "make a lock file": "EACCES",
            "make a socket beside it": "EACCES",
        }
        for path, mode in (
            (data_dir, 0o700),
            (data_dir / "instance.lock", 0o600),
            (data_dir / OWNER_FILE_NAME, 0o600),
            (doorbell.parent, 0o700),
        ):
            assert oct(stat.S_IMODE(path.stat().st_mode)) == oct(mode), path
        assert stat.S_IMODE(doorbell.stat().st_mode) & 0o077 == 0  # the socket itself: this user only

        # This user's second launch still reaches the real window, not the squatter in /tmp.
        second = await run_cli([], env, timeout=60)
        assert second.returncode == 0, second.stderr
        await first.wait_for(lambda: "bringing it forward" in first.stderr, 10, "the first window to be raised")
        assert simulator.gateway.connections_opened == 1
        assert "bringing it forward" not in second.stderr
        code, _ = await first.terminate()
        assert code == 0
        assert not doorbell.exists()
    finally:
        shutil.rmtree(squat, ignore_errors=True)
        Path(squat).unlink(missing_ok=True)
