"""Time zone names, as configuration, CSV files and model messages carry them: ``"UTC"``, a
fixed offset (``"+05:30"``, ``"UTC-4"``, ``"-03"``) or an IANA name (``"America/New_York"``,
read with :mod:`zoneinfo`). A decoder refuses a name this system cannot read.

>>> tzinfo_of("+05:30").utcoffset(None), tzinfo_of("Europe/Paris").key
(datetime.timedelta(seconds=19800), 'Europe/Paris')
"""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIXED = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def fixed_offset(zone: str) -> float | None:
    """Seconds east of UTC of a fixed-offset zone, or None when it is not one.

    >>> fixed_offset("UTC"), fixed_offset("+05:30"), fixed_offset("UTC-4"), fixed_offset("X")
    (0.0, 19800.0, -14400.0, None)
    """
    if zone in ("UTC", "GMT", "Z"):
        return 0.0
    m = _FIXED.match(zone)
    if m is None:
        return None
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 18 or minutes > 59:
        return None
    return (1.0 if m.group(1) == "+" else -1.0) * (hours * 3600 + minutes * 60)


def check_zone(zone: str) -> str:
    """The zone, if it is a fixed offset or a time zone this system knows; else ValueError.

    >>> check_zone("Mars/Olympus")
    Traceback (most recent call last):
    ...
    ValueError: unknown time zone 'Mars/Olympus' (an IANA name such as 'America/New_York', ...
    """
    if fixed_offset(zone) is None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as "
                             f"'America/New_York', or an offset such as '+05:30')") from None
    return zone




def tzinfo_of(zone: str) -> tzinfo:
    """The zone as a :class:`datetime.tzinfo` (ValueError for one this system cannot read)."""
    offset = fixed_offset(check_zone(zone))
    return timezone(timedelta(seconds=offset)) if offset is not None else ZoneInfo(zone)
