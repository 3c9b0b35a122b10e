"""The node processes of a deployment: how one is started, recorded, and stopped."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.address import BrokerAddress
from broker.processes import stop_processes
from gateway.task_check import EXIT_TASK_UNFIT, PREFIX

#: The environment variables that say how to connect (a node started by `up` gets up's own).
CONNECTION_ENV = ("FLEETLEARN_BROKER", "FLEETLEARN_USERNAME", "FLEETLEARN_PASSWORD",
                  "FLEETLEARN_TLS_CA", "FLEETLEARN_TLS_CERT", "FLEETLEARN_TLS_KEY")


def connection(address: BrokerAddress, env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The options and the environment that connect a node as ``up`` is connected: the address
    and TLS files on its command line, the credentials in its environment (never on a command
    line, which ``ps`` shows to everyone), and none of ``env``'s own connection variables.

    >>> argv, child = connection(BrokerAddress(port=8883, tls=True, ca="/c/ca.pem",
    ...                                        username="u", password="pw"),
    ...                          {"PATH": "/bin", "FLEETLEARN_TLS_KEY": "/old.key"})
    >>> argv, child
    (['--broker', 'mqtts://127.0.0.1:8883', '--tls-ca', '/c/ca.pem'], \
{'PATH': '/bin', 'FLEETLEARN_USERNAME': 'u', 'FLEETLEARN_PASSWORD': 'pw'})
    """
    argv = ["--broker", str(address)]
    for flag, path in (("--tls-ca", address.ca), ("--tls-cert", address.cert),
                       ("--tls-key", address.key)):
        if path:
            argv += [flag, str(Path(path).resolve())]
    child = {k: v for k, v in env.items() if k not in CONNECTION_ENV}
    for name, value in (("USERNAME", address.username), ("PASSWORD", address.password)):
        if value is not None:
            child[f"FLEETLEARN_{name}"] = value
    return argv, child


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


def exit_problem(children: list[Child]) -> str | None:
    """Which node exited (a replay that finished with code 0 aside), how, and its log's last
    line; None while all run."""
    for child in children:
        code = child.process.poll() if child.process is not None else None
        if code is not None and not (child.name == "replay" and code == 0):
            tail = child.log_path.read_text(errors="replace").strip().splitlines()[-1:]
            return (f"{child.name} exited with code {code}: "
                    f"{tail[0] if tail else 'no output'} (log: {child.log_path})")
    return None


def any_exited(children: list[Child]) -> bool:
    """Whether any of ``children`` has exited."""
    return any(c.process is not None and c.process.poll() is not None for c in children)


def write_allowlist(log_dir: Path, devices: list[str]) -> Path:
    """The source's device ids, a line each, in ``log_dir``: gateways refuse any other."""
    (path := log_dir / "devices.txt").write_text("".join(f"{d}\n" for d in devices))
    return path


def kill_all(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each of ``procs`` still running, then reap them (2 s each at most)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2.0)


def task_problem(children: list[Child], nodes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """What a gateway said when it found the task does not fit the stream: from its metrics
    (``task_problem``), or, if it exited (code 4) before they came, from its log; else None.

    >>> task_problem([], {"gw-0": {"task_problem": None}, "gw-1": {"task_problem": "no y"}})
    'gw-1: no y'
    """
    for node, metrics in nodes.items():
        if metrics.get("task_problem"):
            return f"{node}: {metrics['task_problem']}"
    for child in children:
        code = child.process.poll() if child.process is not None else None
        if code == EXIT_TASK_UNFIT and child.name.startswith("gw-"):
            said = [line for line in child.log_path.read_text(errors="replace").splitlines()
                    if PREFIX in line]
            what = PREFIX + said[-1].split(PREFIX, 1)[1] if said else PREFIX
            return f"{child.name}: {what} (log: {child.log_path})"
    return None
