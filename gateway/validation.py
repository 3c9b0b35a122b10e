"""Checks a decoded reading must pass before it is cleaned and learned. Pure: ``now`` is passed in.

>>> from broker.messages import Reading
>>> check_reading("s0-d0001", Reading("s0-d0002", 1, 0.0, {}))
Traceback (most recent call last):
...
gateway.validation.Rejected: id_mismatch: topic says 's0-d0001', payload says 's0-d0002'
"""

from __future__ import annotations

from broker.messages import Reading


class Rejected(Exception):
    """A reading refused for a counted ``reason``, with a human ``detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_reading(topic_device: str, reading: Reading,
                  allowlist: frozenset[str] | None = None) -> Reading:
    """The reading, when its topic names the same device and the device is allowed."""
    if reading.device != topic_device:
        raise Rejected(
            "id_mismatch", f"topic says {topic_device!r}, payload says {reading.device!r}"
        )
    if allowlist is not None and reading.device not in allowlist:
        raise Rejected("unknown_device", reading.device)
    return reading

