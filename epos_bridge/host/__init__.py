"""The till PC: process and operating-system concerns, in one place.

Crash handling, logs, the single instance per data folder, file locks, start at login, owner-only
files, the OS trust store and the diagnostics export. The core (protocol, domain, ports,
services) never imports this package, and it imports neither the UI, the composition root nor
the CLI (import-linter contracts in pyproject.toml).
"""
