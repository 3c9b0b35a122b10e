"""The live page's settings: the one home of their defaults (no aiohttp here: the command line
reads them without loading the server)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DashboardSettings:
    #: `fleetlearn dashboard --port`: the page is on http://127.0.0.1:PORT/.
    port: int = 8765
    #: Seconds between the page's updates.
    every: float = 1.0
