"""Local time for the time features: a UTC offset or IANA time zone per site or device.

``hour_*`` and ``doy_*`` are computed from the reading's UTC timestamp plus its zone's offset
at that instant (daylight saving included), so an hour feature means the same hour of the day
at every site. :class:`LocalTime` names a default zone and overrides by site or device name (a
device's wins over its site's). A zone is ``"UTC"``, a fixed offset (``"+05:30"``,
``"UTC-4"``) or an IANA name (``"America/New_York"``, read with :mod:`zoneinfo`).

The offsets of a block come from each zone's table of transitions (UTC instants from which the
offset changes, 1970-2100, found once per zone by a daily scan and a bisection to the second),
one ``np.searchsorted`` a zone a block; before 1970 or after 2100 the nearest offset holds.

>>> ny = LocalTime("America/New_York", {"paris": "Europe/Paris"})
>>> ny.zone_of("s0", "d1"), ny.zone_of("paris", "d2")
('America/New_York', 'Europe/Paris')
>>> ts = np.array([1362898799.0, 1362898800.0])  # 2013-03-10 06:59:59 and 07:00 UTC: DST starts
>>> (offsets(ts, "America/New_York") / 3600).tolist()
[-5.0, -4.0]
>>> offsets(np.array([0.0]), "-03:30").tolist()
[-12600.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from broker.zones import check_zone, fixed_offset

_DAY = 86_400
_FIRST, _LAST = 0, int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())


@lru_cache(maxsize=128)
def transitions(zone: str) -> tuple[np.ndarray, np.ndarray]:
    """(instants, offsets): the UTC seconds at which the zone's offset changes, and the offset
    in seconds before the first (``offsets[0]``) and from each on."""
    fixed = fixed_offset(zone)
    if fixed is not None:
        return np.empty(0), np.array([fixed])
    tz = ZoneInfo(zone)

    def offset(t: int) -> float:
        delta = datetime.fromtimestamp(t, tz).utcoffset()
        return delta.total_seconds() if delta is not None else 0.0

    instants, values = [], [offset(_FIRST)]
    day = _FIRST
    while day < _LAST:
        following = offset(day + _DAY)
        if following != values[-1]:
            lo, hi = day, day + _DAY  # offset(lo) is the old one, offset(hi) the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == values[-1] else (lo, mid)
            instants.append(float(hi))
            values.append(following)
        day += _DAY
    return np.array(instants), np.array(values)


def offsets(ts: np.ndarray, zone: str) -> np.ndarray:
    """Each UTC timestamp's offset (seconds east of UTC) in ``zone``."""
    instants, values = transitions(zone)
    if not len(instants):
        return np.full(len(ts), values[0])
    return values[np.searchsorted(instants, ts, side="right")]


@dataclass(frozen=True)
class LocalTime:
    """The zone of every reading: ``default``, overridden by ``zones`` keyed by site or device
    name (a device's entry wins over its site's)."""

    default: str = "UTC"
    zones: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_zone(self.default)
        for zone in self.zones.values():
            check_zone(zone)

    def __hash__(self) -> int:
        return hash((self.default, tuple(sorted(self.zones.items()))))

    @property
    def is_utc(self) -> bool:
        """Every zone is UTC: local time is the timestamp itself."""
        return all(fixed_offset(z) == 0.0 for z in (self.default, *self.zones.values()))

    def zone_of(self, site: str, device: str) -> str:
        return self.zones.get(device) or self.zones.get(site) or self.default

    def offsets(self, ts: np.ndarray, sites: list[str], devices: list[str]) -> np.ndarray:
        """Per reading (its UTC timestamp, site and device), the offset to its local time.

        >>> lt = LocalTime("+01:00", {"d2": "-02:00"})
        >>> lt.offsets(np.array([0.0, 0.0]), ["s", "s"], ["d1", "d2"]).tolist()
        [3600.0, -7200.0]
        """
        out = np.zeros(len(ts))
        if self.is_utc:
            return out
        zones = np.array([self.zone_of(s, d) for s, d in zip(sites, devices, strict=True)],
                         dtype=object)
        for zone in set(zones.tolist()):
            mine = zones == zone
            out[mine] = offsets(np.asarray(ts, float)[mine], zone)
        return out

    def as_dict(self) -> dict[str, object]:
        """As the model message and the config carry it."""
        return {"default": self.default, "zones": dict(self.zones)}
