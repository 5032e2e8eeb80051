#!/usr/bin/env bash
# Build the Linux one-folder bundle and its tarball:
#   dist/epos-bridge/                       the bundle (run dist/epos-bridge/epos-bridge --version)
#   dist/epos-bridge/epos-bridge.desktop    applications-menu entry (Exec=epos-bridge run)
#   dist/epos-bridge/epos-bridge.png        its icon, rendered from resources/icons/app.svg
#   dist/epos-bridge-VERSION-linux-ARCH.tar.gz
# Uses the project venv (.venv) unless PYTHON is set; installs PyInstaller there if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "build.sh: installing PyInstaller into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
  "$PY" -m pip install -q "pyinstaller>=6.10,<7"
fi

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" installer/epos-bridge.spec

BUNDLE="$DIST/epos-bridge"
VERSION=$("$PY" -c "import sys; sys.path.insert(0, 'installer'); import build_assets; print(build_assets.app_version())")
ARCH=$(uname -m)

cp installer/build/epos-bridge.png "$BUNDLE/epos-bridge.png"
# The same desktop-entry writer the app uses for start at login (epos_bridge/host/autostart.py).
"$PY" - "$BUNDLE/epos-bridge.desktop" <<'PYEOF'
import sys
from pathlib import Path
from epos_bridge.host.autostart import desktop_entry
Path(sys.argv[1]).write_text(desktop_entry(["epos-bridge", "run"], autostart=False), encoding="utf-8")
PYEOF

# Smoke: the bundle starts and knows its version.
"$BUNDLE/epos-bridge" --version

TARBALL="$DIST/epos-bridge-$VERSION-linux-$ARCH.tar.gz"
tar -C "$DIST" -czf "$TARBALL" epos-bridge
end=$(date +%s)

echo "bundle:  $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "tarball: $TARBALL ($(du -sh "$TARBALL" | cut -f1))"
echo "built in $((end - start)) s"
