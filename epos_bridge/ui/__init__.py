"""The tray app (PySide6 only lives here): tray icon, status window, settings dialog.

Widgets render what :class:`~epos_bridge.ui.bridge_signals.BridgeSignals` tells them and never
hold the bridge; :func:`epos_bridge.ui.gui.run_gui` wires them. Importing this package does not
import Qt, so headless commands stay Qt-free.

Where things are:

* ``status_window.py`` composes the tabs: ``connection_tab.py``, ``payments_tab.py``,
  ``locks_tab.py`` and ``terminal_panel.py`` (its halves ``open_orders.py`` and
  ``session_panel.py``; its dialogs ``payment_dialogs.py``); each table model sits beside its tab.
* ``words.py`` holds every word shared between widgets (connection states, money, times, orders,
  terminals and terminal sessions); ``styles.py`` the colours and larger type; ``text.py`` plain
  text for outside words; ``clock.py`` the injected clock; ``tasks.py`` the widgets' asyncio
  tasks; ``table_model.py`` what the read-only tables share.
"""
