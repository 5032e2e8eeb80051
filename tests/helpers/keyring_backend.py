"""A REAL keyring backend for tests — never a fake, never the developer's own keyring.

Which backend, and why
----------------------
1. **gnome-keyring's Secret Service** (``keyring.backends.SecretService.Keyring``, the backend
   a Linux desktop till really uses), when ``dbus-run-session`` and ``gnome-keyring-daemon``
   are installed. Each test gets a private session bus and a private daemon whose keyrings live
   under ``tmp_path``; the ``login`` collection is created and unlocked by piping a password to
   ``gnome-keyring-daemon --unlock`` (an *empty* password does not create it: the daemon then
   asks a GUI prompter, which fails headless — tried on Debian 12). The test process talks to
   that bus through ``DBUS_SESSION_BUS_ADDRESS`` (SecretStorage opens a new connection per call,
   reading the variable each time), so the in-process dialog and service use the real daemon.
   CI needs the Debian packages **dbus** (``dbus-run-session``, ``dbus-daemon``) and
   **gnome-keyring** (``gnome-keyring-daemon``); ``--no-install-recommends`` is enough.
2. **keyrings.alt's PlaintextKeyring** with its file in ``tmp_path``, when (1) is not installed
   or does not start. It is a real backend (it writes and re-reads a file through the keyring
   API), just not an OS one. ``RealKeyring.kind`` and ``RealKeyring.why`` say which one a test
   got, and the tests print it.

``EPOS_BRIDGE_TEST_KEYRING=secret-service`` makes (1) mandatory (CI sets it so a broken image
fails loudly instead of quietly testing the fallback); ``=plaintext`` forces (2).

:func:`run_under_secret_service` also runs Python code in a *subprocess* inside its own
``dbus-run-session`` with an unlocked daemon, for tests that check what ``keyring`` picks by
itself (no injected backend) on a desktop session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from keyring.backend import KeyringBackend

from epos_bridge.config import KEYRING_SERVICE, KEYRING_USERNAME

MODE_VARIABLE = "EPOS_BRIDGE_TEST_KEYRING"
KEYRING_PASSWORD = "epos-bridge-test-keyring"  # unlocks the throwaway login keyring; not a secret
_UNLOCK = f"printf '%s' '{KEYRING_PASSWORD}' | gnome-keyring-daemon --unlock --components=secrets >/dev/null"


@dataclass
class RealKeyring:
    backend: KeyringBackend
    kind: Literal["secret-service", "plaintext-file"]
    why: str
    file_path: Path | None = None
    """The plaintext backend's file (``None`` for the Secret Service)."""

    def stored_api_key(self) -> str | None:
        """What the keyring holds for the bridge, read straight from the backend."""
        return self.backend.get_password(KEYRING_SERVICE, KEYRING_USERNAME)


def secret_service_tools() -> str | None:
    """``None`` when both programs exist, else which one is missing."""
    for program in ("dbus-run-session", "gnome-keyring-daemon"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian: apt-get install dbus gnome-keyring)"
    return None


def _session_env(folder: Path) -> dict[str, str]:
    """HOME and XDG folders inside ``folder`` so the daemon never sees the user's keyrings."""
    # XDG_RUNTIME_DIR holds the daemon's control socket: keep its path short (108-byte limit).
    runtime = Path(tempfile.mkdtemp(prefix="ebk-"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder / "home"),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
    }
    for name in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        Path(env[name]).mkdir(parents=True, exist_ok=True)
    return env


@contextlib.contextmanager
def secret_service_bus(folder: Path, timeout: float = 15.0) -> Iterator[str]:
    """A private session bus with an unlocked gnome-keyring; yields its address.

    The whole session (bus, shell, daemon) is one process group we started; it is ended by its
    group id afterwards, and the daemon leaves when its bus goes away.
    """
    env = _session_env(folder)
    address_file = folder / "bus-address"
    script = f'{_UNLOCK} && printf "%s" "$DBUS_SESSION_BUS_ADDRESS" > "{address_file}" && exec sleep 3600'
    process = subprocess.Popen(
        ["dbus-run-session", "--", "sh", "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not (address_file.exists() and address_file.read_text()):
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the Secret Service session exited ({process.returncode}): {stderr.strip()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the Secret Service session did not start in time")
            time.sleep(0.02)
        yield address_file.read_text()
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)


def _secret_service_backend() -> KeyringBackend:
    from keyring.backends.SecretService import Keyring

    backend = Keyring()
    # Touch the collection now so a daemon that cannot serve fails here, not mid-test.
    backend.get_password(KEYRING_SERVICE, "probe")
    return backend


def _plaintext_backend(folder: Path) -> tuple[KeyringBackend, Path]:
    from keyrings.alt.file import PlaintextKeyring

    backend = PlaintextKeyring()
    path = folder / "keyring_pass.cfg"
    backend.file_path = str(path)  # never the user's ~/.local/share/python_keyring
    return backend, path


@contextlib.contextmanager
def open_real_keyring(folder: Path) -> Iterator[RealKeyring]:
    """The best real backend this machine offers (see the module docstring).

    Sets ``DBUS_SESSION_BUS_ADDRESS`` for the Secret Service while open and restores it after.
    """
    folder.mkdir(parents=True, exist_ok=True)
    mode = os.environ.get(MODE_VARIABLE, "").strip().lower()
    missing = secret_service_tools()
    if mode == "secret-service" and missing is not None:
        raise RuntimeError(f"{MODE_VARIABLE}=secret-service but {missing}")
    reason = f"{MODE_VARIABLE}=plaintext" if mode == "plaintext" else str(missing)
    if mode != "plaintext" and missing is None:
        previous = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        with contextlib.ExitStack() as stack:
            found: RealKeyring | None = None
            try:  # only the start-up may fall back; a failing test body must not
                address = stack.enter_context(secret_service_bus(folder / "secret-service"))
                os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
                found = RealKeyring(
                    _secret_service_backend(), "secret-service", "gnome-keyring on a private dbus-run-session bus"
                )
            except Exception as exc:
                if mode == "secret-service":
                    raise
                reason = f"the Secret Service did not start here ({type(exc).__name__}: {exc})"
                stack.close()
            try:
                if found is not None:
                    yield found
                    return
            finally:
                if previous is None:
                    os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
                else:
                    os.environ["DBUS_SESSION_BUS_ADDRESS"] = previous
    backend, path = _plaintext_backend(folder)
    yield RealKeyring(backend, "plaintext-file", f"keyrings.alt PlaintextKeyring in tmp_path: {reason}", path)


def run_under_secret_service(
    code: str, folder: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` inside a fresh ``dbus-run-session`` with an unlocked gnome-keyring.

    No keyring backend is forced: the child's ``keyring`` library chooses as it would on a till.
    """
    child_env = _session_env(folder)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(sys.path)
    try:
        return subprocess.run(
            [
                "dbus-run-session",
                "--",
                "sh",
                "-c",
                f'{_UNLOCK} && exec "{sys.executable}" -c "$0"',
                code,
            ],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(child_env["XDG_RUNTIME_DIR"], ignore_errors=True)
