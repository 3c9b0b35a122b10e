"""From a reading to a feature vector and a target, as the task configuration names them.

A feature is a channel name, or a derived one:

- ``hour_sin`` / ``hour_cos``: the time of day of the reading's timestamp on a circle, in the
  local time of its site or device (:class:`FeatureSpec` ``local_time``; UTC by default);
- ``doy_sin`` / ``doy_cos``: the day of the year, likewise;
- ``lag1_<channel>``: the device's previous value of that channel (any channel, the target too);
- ``site_<site>``: 1.0 when the reading comes from that site, else 0.0 (one-hot);
- ``device_<device>``: 1.0 when it comes from that device, else 0.0 (one-hot).

>>> spec = FeatureSpec(features=("temperature", "hour_sin", "lag1_power"), target="power")
>>> spec.channels
('temperature', 'power')
>>> build = FeatureBuilder(spec)
>>> build({"temperature": 21.0, "power": 3.5}, ts=6 * 3600.0, device="d", site="s0")
Traceback (most recent call last):
...
gateway.validation.Rejected: no_history: lag1_power needs an earlier reading of d
>>> x, y = build({"temperature": 22.0, "power": 3.9}, ts=6 * 3600.0, device="d", site="s0")
>>> x.tolist(), y
([22.0, 1.0, 3.5], 3.9)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gateway.local_time import LocalTime
from gateway.validation import Rejected

_DAY = 86_400.0
_YEAR = 365.2425 * _DAY
CYCLIC = {"hour_sin": (_DAY, math.sin), "hour_cos": (_DAY, math.cos),
          "doy_sin": (_YEAR, math.sin), "doy_cos": (_YEAR, math.cos)}
LAG = "lag1_"
SITE = "site_"
DEVICE = "device_"


@dataclass(frozen=True)
class FeatureSpec:
    """Which features (channels or derived) feed the model, and which channel is the target;
    and the local time the time features are computed in."""

    features: tuple[str, ...]
    target: str
    local_time: LocalTime = field(default_factory=LocalTime)

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("name at least one feature")
        if self.target in self.features:
            raise ValueError(f"the target {self.target!r} cannot also be a feature")
        if len(set(self.features)) != len(self.features):
            raise ValueError("a feature is named twice")
        for f in self.features:
            if f.startswith((LAG, SITE, DEVICE)) and f in (LAG, SITE, DEVICE):
                raise ValueError(f"derived feature {f!r} names nothing")

    @property
    def channels(self) -> tuple[str, ...]:
        """The raw channels a reading must bring (cleaned, imputed): features, lags, target."""
        names: list[str] = []
        for f in self.features:
            if f in CYCLIC or f.startswith((SITE, DEVICE)):
                continue
            name = f[len(LAG):] if f.startswith(LAG) else f
            if name != self.target and name not in names:
                names.append(name)
        return (*names, self.target)


class FeatureBuilder:
    """Builds feature vectors; keeps each device's previous values for the lag features."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.lagged = tuple(f[len(LAG):] for f in spec.features if f.startswith(LAG))
        self._previous: dict[str, dict[str, float]] = {}
        self._plan = [self._getter(f) for f in spec.features]
        self._timed = any(f in CYCLIC for f in spec.features)

    def _getter(self, feature: str):
        if feature in CYCLIC:
            period, fn = CYCLIC[feature]
            return lambda values, t, prev, site, device: fn(2 * math.pi * (t % period) / period)
        if feature.startswith(SITE):
            wanted = feature[len(SITE):]
            return lambda values, t, prev, site, device: 1.0 if site == wanted else 0.0
        if feature.startswith(DEVICE):
            wanted = feature[len(DEVICE):]
            return lambda values, t, prev, site, device: 1.0 if device == wanted else 0.0
        if feature.startswith(LAG):
            channel = feature[len(LAG):]
            return lambda values, t, prev, site, device: prev[channel]
        return lambda values, t, prev, site, device: values[feature]

    def __call__(self, values: dict[str, float], ts: float, device: str, site: str
                 ) -> tuple[np.ndarray, float]:
        """The feature vector and the target value of one (cleaned) reading."""
        try:
            y = values[self.spec.target]
        except KeyError:
            raise Rejected("missing_target", self.spec.target) from None
        prev = self._previous.get(device)
        if self.lagged:
            # the lag state moves on even if this reading is refused below: it is the
            # device's previous reading either way
            self._previous[device] = {c: values[c] for c in self.lagged if c in values}
            if prev is None or any(c not in prev for c in self.lagged):
                missing = next(f for f in self.spec.features if f.startswith(LAG)
                               and (prev is None or f[len(LAG):] not in prev))
                raise Rejected("no_history", f"{missing} needs an earlier reading of {device}")
        t = ts  # local time: the timestamp plus its zone's offset then
        if self._timed and not self.spec.local_time.is_utc:
            t = ts + float(self.spec.local_time.offsets(np.array([ts]), [site], [device])[0])
        try:
            x = np.fromiter((get(values, t, prev, site, device) for get in self._plan), float,
                            len(self._plan))
        except KeyError as exc:
            raise Rejected("missing_channel", str(exc.args[0])) from None
        return x, y
