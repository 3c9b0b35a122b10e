"""From a reading's channel values to a feature vector and a target, as configured.

>>> spec = FeatureSpec(features=("temperature", "humidity"), target="power")
>>> x, y = spec.build({"temperature": 21.0, "humidity": 40.0, "power": 3.5})
>>> x.tolist(), y
([21.0, 40.0], 3.5)
>>> spec.build({"temperature": 21.0, "power": 3.5})
Traceback (most recent call last):
...
gateway.validation.Rejected: missing_channel: humidity
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.validation import Rejected


@dataclass(frozen=True)
class FeatureSpec:
    """Which channels are features, and which one is the target."""

    features: tuple[str, ...]
    target: str

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("name at least one feature channel")
        if self.target in self.features:
            raise ValueError(f"the target {self.target!r} cannot also be a feature")

    def vector(self, values: dict[str, float]) -> np.ndarray:
        try:
            return np.fromiter((values[f] for f in self.features), float, len(self.features))
        except KeyError as exc:
            raise Rejected("missing_channel", str(exc.args[0])) from None

    def build(self, values: dict[str, float]) -> tuple[np.ndarray, float]:
        """The feature vector and the target value of one reading."""
        x = self.vector(values)
        try:
            return x, values[self.target]
        except KeyError:
            raise Rejected("missing_target", self.target) from None
