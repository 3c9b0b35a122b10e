"""The node processes of a deployment: how one is started, recorded, and stopped."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.processes import stop_processes


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def record(self) -> dict[str, Any]:
        code = self.process.poll() if self.process else None
        return {"name": self.name, "pid": self.pid, "exit_code": code,
                "stopped": self.process is not None and code is not None,
                "log": str(self.log_path)}


def stop_children(children: list[Child], timeout: float = 10.0) -> None:
    """SIGTERM to every child still running, then wait for all with one deadline; kill what is
    left (:func:`broker.processes.stop_processes`). Only these processes: never by name."""
    stop_processes([c.process for c in children if c.process is not None], timeout)
