"""The node processes of a deployment: how one is started, recorded, and stopped."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    left. Only these processes: never by name or pattern."""
    for child in children:
        if child.running:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(5)
