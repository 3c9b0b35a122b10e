"""Test-side MQTT helpers, built on the project's own client node."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from broker.address import BrokerAddress
from broker.client import Node
from broker.client_factory import Session


def wait_until(condition: Callable[[], bool], timeout: float, poll: Callable[[], None],
               what: str = "condition") -> None:
    """Poll until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        poll()


class Recorder:
    """Subscribes to some filters and keeps every (topic, payload) it receives."""

    def __init__(self, address: BrokerAddress, *filters: str, kept_id: str | None = None,
                 ) -> None:
        """``kept_id``: a kept session under this client id (the broker queues for it)."""
        self.messages: list[tuple[str, bytes]] = []
        self.node = Node("test-recorder", address, subscriptions=[(f, 1) for f in filters],
                         handler=lambda t, p: self.messages.append((t, p)),
                         session=Session(kept_id) if kept_id else None)
        self.node.connect(timeout=5)

    def poll(self) -> None:
        self.node.poll(0.02)

    def on(self, topic_part: str) -> list[bytes]:
        return [p for t, p in self.messages if topic_part in t]

    def wait(self, condition: Callable[[], bool], timeout: float = 10.0,
             what: str = "messages") -> None:
        wait_until(condition, timeout, self.poll, what)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.node.publish(topic, payload, qos=qos, retain=retain)

    def close(self) -> None:
        self.node.close(flush_timeout=2)


class ServiceThread:
    """Runs a service's node loop in a thread (no signal handlers), for in-process tests."""

    def __init__(self, service) -> None:
        self.service = service
        getattr(service, "connect", service.node.connect)()
        self.thread = threading.Thread(target=getattr(service, "loop", service.node.run),
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.service

    def __exit__(self, *exc: object) -> None:
        self.service.node.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def run_fleetlearn(recorder: Recorder, *args: str, timeout: float = 30) -> str:
    """Run ``python -m fleetlearn ARGS`` to its end (the recorder's network turns while it
    runs); assert it exited 0; its stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "fleetlearn", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5"})
    try:
        recorder.wait(lambda: proc.poll() is not None, timeout=timeout, what="the command to exit")
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return err


def wait_deployment(dep: Any, condition: Callable[[], bool], timeout: float,
                    *also: Recorder) -> bool:
    """Poll a :class:`~fleetlearn.deploy.up.LocalDeployment`'s monitor (and any recorders)
    until ``condition()`` or the timeout."""
    def polled() -> bool:
        for recorder in also:
            recorder.node.poll(0)
        return condition()
    return dep.monitor.wait_for(polled, timeout)


def model_version(dep: Any) -> int:
    """The newest model version a deployment's monitor has seen (0: none yet)."""
    return dep.state.last_model.version if dep.state.last_model else 0
