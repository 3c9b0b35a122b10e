"""A benchmark's node process: ``python -m fleetlearn.bench.child ROLE SPEC_JSON``.

It talks to the benchmark over its stdin and stdout, one JSON object a line: it writes
``{"ready": ...}`` once subscribed, waits for a ``go`` line, then writes its result (or
``{"error": ...}``). It imports only what its role needs, so a raw subscriber's memory is a raw
subscriber's, not the whole CLI's.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson


class Conn:
    """The benchmark's end of the conversation, over stdin and stdout."""

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
        sys.stdout.buffer.flush()

    def recv(self) -> str:
        return sys.stdin.readline().strip()


def main(argv: list[str]) -> None:
    role, spec = argv[0], orjson.loads(argv[1])
    conn = Conn()
    try:
        import dataclasses

        from broker.address import BrokerAddress

        address = BrokerAddress.parse(spec.pop("address"))
        address = dataclasses.replace(address, ca=spec.pop("ca", None))
        if role == "raw":
            from fleetlearn.bench.raw import raw_subscriber

            raw_subscriber(conn, address, **spec)
        elif role == "gateway":
            from fleetlearn.bench.ingest import gateway_subscriber

            gateway_subscriber(conn, address, **spec)
        elif role == "predictor":
            from fleetlearn.bench.serving import predictor_subscriber

            predictor_subscriber(conn, address, **spec)
        elif role == "watcher":
            from fleetlearn.bench.serving import prediction_watcher

            prediction_watcher(conn, address, **spec)
        elif role == "aggregator":
            from fleetlearn.bench.sync import aggregator_process

            aggregator_process(conn, address, **spec)
        else:
            raise ValueError(f"unknown role {role!r}")
    except Exception as exc:  # the benchmark shows it as one line
        conn.send({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    main(sys.argv[1:])
