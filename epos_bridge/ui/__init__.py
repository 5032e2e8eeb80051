"""The tray app (PySide6 only lives here): tray icon, status window, settings dialog.

Widgets render what :class:`~epos_bridge.ui.bridge_signals.BridgeSignals` tells them and never
hold the bridge; :func:`epos_bridge.ui.gui.run_gui` wires them. Importing this package does not
import Qt, so headless commands stay Qt-free.
"""
