"""The replay's time cells as epoch seconds: epoch seconds, ISO 8601 or a ``strptime``
format; a time that names no zone is in the row's zone (its ``--tz-col`` cell) or UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo

from broker.zones import tzinfo_of

#: Cell texts (compared lower-cased, after stripping blanks) that mean "no value".
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})


def parse_time(text: str, time_format: str | None = None, zone: tzinfo = UTC) -> float:
    """Epoch seconds, or ISO 8601, or (given) a :meth:`datetime.strptime` format, as float
    epoch seconds; a time that names no zone is in ``zone`` (UTC unless given).

    >>> parse_time("1357020000"), parse_time("2013-01-01T06:00:00Z")
    (1357020000.0, 1357020000.0)
    >>> parse_time("2013-01-01 07:00:00+01:00"), parse_time("2013-01-01 06:00")
    (1357020000.0, 1357020000.0)
    >>> parse_time("01/01/2013 6AM", "%d/%m/%Y %I%p")
    1357020000.0
    >>> parse_time("2013-01-01 01:00", zone=tzinfo_of("America/New_York"))
    1357020000.0
    >>> parse_time("2013-01-01", "%d/%m/%Y")
    Traceback (most recent call last):
    ...
    ValueError: time '2013-01-01' does not match the format '%d/%m/%Y'
    """
    text = text.strip()
    if time_format is not None:
        try:
            value = _utc(datetime.strptime(text, time_format), zone)
        except ValueError:
            raise ValueError(f"time {text!r} does not match the format {time_format!r}"
                             ) from None
    else:
        try:
            value = float(text)
        except ValueError:
            value = _iso_time(text, zone)
    if not math.isfinite(value):
        raise ValueError(f"time {text!r} is not finite")
    return value


def _iso_time(text: str, zone: tzinfo) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {text!r} is neither epoch seconds nor ISO 8601 (give its "
                         "format: --time-format)") from None
    return _utc(moment, zone)


def _utc(moment: datetime, zone: tzinfo) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def row_time(text: str, where: str, time_format: str | None, zone: tzinfo = UTC) -> float:
    if text.strip().lower() in MISSING:
        raise ValueError(f"{where}: the time is missing")
    try:
        return parse_time(text, time_format, zone)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def row_zone(text: str, where: str, known: dict[str, tzinfo]) -> tzinfo:
    """A zone cell (an IANA name or an offset) as a tzinfo, each name read once."""
    name = text.strip()
    if name not in known:
        try:
            known[name] = tzinfo_of(name)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return known[name]
