"""Watches a deployment over MQTT: metrics, node status, dead letters and models.

With a trust file (``up --secure``) it takes only models an aggregator's key signed, as every
node does: a forged model (one an aggregator's stolen password let through the broker) is
ignored and counted (``model_<reason>`` in ``ignored``), so the report's model history is the
aggregator's alone."""

from __future__ import annotations

import logging
import time

from broker.address import BrokerAddress
from broker.client import Node
from broker.keyring import MODEL_SIGNERS, Keyring, SignatureRefused
from broker.model_codec import decode_model
from broker.topics import Topics
from broker.wire import DecodeError, decode_json_object
from fleetlearn.deploy.state import DeploymentState


class Monitor:
    def __init__(self, topics: Topics, broker: BrokerAddress, state: DeploymentState,
                 give_up_after: float | None = None, keys: Keyring | None = None) -> None:
        """``give_up_after``: seconds without the broker before :meth:`poll` raises
        :class:`~broker.address.BrokerUnreachable` (None: never); ``keys``: the trust file
        models must be signed against (None: any model is taken)."""
        self.topics = topics
        self.keys = keys or Keyring()
        self.state = state
        self.started = time.monotonic()
        self.node = Node(
            "monitor", broker,
            subscriptions=[(topics.metrics_filter, 0), (topics.model, 1),
                           (topics.node_status_filter, 1), (topics.deadletter_filter, 0)],
            handler=self.handle, give_up_after=give_up_after,
        )
        self.node.log.setLevel(logging.ERROR)  # `up` says it itself when the broker is gone

    def handle(self, topic: str, payload: bytes) -> None:
        t = self.topics
        try:
            if topic == t.model:
                body, _ = self.keys.check(payload, "model", MODEL_SIGNERS)
                self.state.on_model(decode_model(body), time.monotonic() - self.started)
            elif topic.startswith(t.metrics("")):
                self.state.on_metrics(decode_json_object(payload), t.last_level(topic),
                                      time.monotonic() - self.started)
            elif topic.startswith(t.node_status("")):
                self.state.on_status(t.last_level(topic), payload)
            elif topic.startswith(t.deadletter("")):
                letter = decode_json_object(payload)
                self.state.on_deadletter(str(letter.get("reason")), letter)
        except SignatureRefused as exc:
            self.state.ignored[f"model_{exc.reason}"] += 1
        except DecodeError:
            self.state.on_deadletter("monitor_undecodable")

    def connect(self) -> None:
        self.node.connect()

    def poll(self, timeout: float = 0.05) -> None:
        self.node.poll(timeout)

    def wait_for(self, condition, timeout: float) -> bool:
        """Poll until ``condition()`` holds or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.poll()
        return True

    def close(self) -> None:
        self.node.close(flush_timeout=1.0)
