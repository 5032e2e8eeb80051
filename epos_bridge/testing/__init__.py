"""Test tools shipped with epos-bridge for adapter authors.

:mod:`epos_bridge.testing.contract_suite` is the one adapter contract suite: every adapter, ours
and third-party, must pass it. See docs/writing-an-adapter.md.
"""

from __future__ import annotations

from epos_bridge.testing.contract_suite import STANDARD_VENUE, AdapterContract, Seeder, StandardVenue, requires

__all__ = ["STANDARD_VENUE", "AdapterContract", "Seeder", "StandardVenue", "requires"]
