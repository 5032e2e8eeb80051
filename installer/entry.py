"""The bundle's entry point: the same ``epos-bridge`` command as the pip-installed one."""

from epos_bridge.cli import main

raise SystemExit(main())
