"""Checks a decoded reading must pass before it is learned. Pure: no clock, no transport.

The full cleaning (sequence marks, timestamps, imputation, outliers) grows here.

>>> from broker.codec import Reading
>>> check_reading("s0-d0001", Reading("s0-d0002", 1, 0.0, {}))
Traceback (most recent call last):
...
gateway.validation.Rejected: id_mismatch: topic says 's0-d0001', payload says 's0-d0002'
"""

from __future__ import annotations

from broker.codec import Reading


class Rejected(Exception):
    """A reading refused for a counted ``reason``, with a human ``detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_reading(topic_device: str, reading: Reading) -> Reading:
    """The reading, when the device it names is the one its topic names."""
    if reading.device != topic_device:
        raise Rejected(
            "id_mismatch", f"topic says {topic_device!r}, payload says {reading.device!r}"
        )
    return reading
