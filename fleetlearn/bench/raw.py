"""The baseline subscriber of the ingest benchmark: a plain paho client that only decodes.

This module imports paho directly, the one exception to "paho only in broker/client.py": the
baseline must be what a user would write without fleetlearn (``on_message`` does
``orjson.loads`` and counts the readings, in any of the three layouts; the loop is paho's own
``loop()``), so none of fleetlearn's node machinery may be in it. It runs in a process of its
own (:mod:`fleetlearn.bench.child`) that imports nothing else heavy, so its memory is a raw
subscriber's.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from broker.address import BrokerAddress
from fleetlearn.bench.measure import rss_mib


def raw_subscriber(conn: Any, address: BrokerAddress, prefix: str, n: int,
                   timeout: float = 120.0) -> None:
    """Subscribe to every reading, report ready, wait for ``go``, count decoded readings to n."""
    state = {"readings": 0, "subscribed": False}

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(f"{prefix}/+/+/reading", qos=1)

    def on_subscribe(client, userdata, mid, reason_codes, properties) -> None:
        state["subscribed"] = True

    def on_message(client, userdata, message) -> None:
        data = orjson.loads(message.payload)
        if isinstance(data, list):  # a batch in rows: an array of readings
            state["readings"] += len(data)
        elif isinstance(data["seq"], list):  # a batch in columns: one list per field
            state["readings"] += len(data["seq"])
        else:  # one reading
            state["readings"] += 1

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"bench-raw-{prefix}", clean_session=True)
    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_message = on_message
    client.connect(address.host, address.port, keepalive=60)
    deadline = time.monotonic() + 30
    while not state["subscribed"] and time.monotonic() < deadline:
        client.loop(0.1)
    conn.send({"ready": True, "rss_mib": rss_mib()})
    conn.recv()
    start = time.monotonic()
    deadline = start + timeout
    while state["readings"] < n and time.monotonic() < deadline:
        client.loop(0.01)
    end = time.monotonic()
    conn.send({"start": start, "end": end, "received": state["readings"],
               "learned": 0, "rss_mib": rss_mib()})
    client.disconnect()
