"""What :meth:`fleetlearn.Model.predict_one` needs of a caller, and what it can fill in.

A model names its features; each is a channel the caller passes in ``x`` or a derived one
(:mod:`gateway.features`): ``hour_*``/``doy_*`` need ``ts``, ``lag1_<channel>`` needs
``device`` (and an earlier call for it), ``site_<site>`` needs ``site``, ``device_<device>``
needs ``device``; the time features are in the model's local time (its ``local_time``: the
zone of the site or device given, else its default). A channel missing from
``x`` (absent, None or NaN) is filled as ``fill`` says, or named in :class:`MissingInput`.

>>> need = Needs(("temp", "hour_sin", "lag1_temp", "site_jfk"), "humid")
>>> need.channels
('temp',)
>>> for phrase in need.context(ts=None, device=None, site="jfk"): print(phrase)
ts= (UNIX seconds, or a datetime) for hour_sin
device= (the device id, whose previous reading gives lag1_temp)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from gateway.features import CYCLIC, DEVICE, LAG, SITE, FeatureSpec
from gateway.local_time import LocalTime

#: How a missing channel is filled: never (MissingInput), the device's last value given to
#: this model (else the fleet's mean), or the fleet's mean (the model's moments).
FILLS = ("none", "last", "mean")
#: The default fill, the one home of it: a made-up input is the caller's choice.
DEFAULT_FILL = "none"


class MissingInput(ValueError):
    """A prediction needs inputs that were not given; ``missing`` names them.

    >>> str(MissingInput(["visib"], ["ts= ..."]))
    "missing input: channel 'visib' (pass it in x, or predict with fill='last' or 'mean'); ts= ..."
    """

    def __init__(self, channels: list[str], context: list[str] | None = None) -> None:
        self.missing = [*channels, *(context or [])]
        parts = []
        if channels:
            names = ", ".join(repr(c) for c in channels)
            parts.append(f"channel{'s' * (len(channels) > 1)} {names} (pass "
                         f"{'them' if len(channels) > 1 else 'it'} in x, or predict with "
                         "fill='last' or 'mean')")
        parts += context or []
        super().__init__("missing input: " + "; ".join(parts))


def absent(value: object) -> bool:
    """A value that is not there: missing, None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def seconds(ts: float | datetime) -> float:
    """UNIX seconds of ``ts``; a naive datetime is taken as UTC (as the replay reads a CSV).

    >>> seconds(datetime(2013, 1, 1, 6)), seconds(90.0)
    (1357020000.0, 90.0)
    """
    if isinstance(ts, datetime):
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    return float(ts)


class Needs:
    """The channels and the context (ts, device, site) a model's features need."""

    def __init__(self, features: tuple[str, ...], target: str,
                 local_time: LocalTime | None = None) -> None:
        spec = FeatureSpec(features, target, local_time or LocalTime())
        self.spec = spec
        self.channels = tuple(c for c in spec.channels if c != target)
        self.timed = next((f for f in features if f in CYCLIC), None)
        self.lagged = next((f for f in features if f.startswith(LAG)), None)
        self.sited = next((f for f in features if f.startswith(SITE)), None)
        self.deviced = next((f for f in features if f.startswith(DEVICE)), None)

    def context(self, ts: object, device: object, site: object) -> list[str]:
        """What is missing of the context, one phrase each (empty: all there)."""
        out = []
        if self.timed and ts is None:
            out.append(f"ts= (UNIX seconds, or a datetime) for {self.timed}")
        if self.lagged and device is None:
            out.append(f"device= (the device id, whose previous reading gives {self.lagged})")
        if self.sited and site is None:
            out.append(f"site= (the reading's site) for {self.sited}")
        if self.deviced and device is None:
            out.append(f"device= (the reading's device) for {self.deviced}")
        return out
