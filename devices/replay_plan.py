"""A CSV file as device readings, the replay's plan: each row is one reading of the device it
names.

:func:`load_readings` is pure (stdlib ``csv``, no MQTT): it reads the file, checks
it and returns the readings in time order with per-device sequence numbers from 0. A missing
cell (empty, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``; any case) or a non-finite number is
a missing channel: its key is absent from ``values``. Times are epoch seconds or ISO 8601
(``2013-01-01T06:00:00Z``, ``2013-01-01 06:00``, ``2013-01-01``), or follow a ``time_format``
(:meth:`datetime.strptime`'s, e.g. ``%d/%m/%Y %H:%M``); a time without a zone is UTC. The date
and the time of day may be two columns (``date_col``: the two cells joined by a space), and
``skip_rows`` lines before the header (a logger's preamble) are skipped. By default every
column other than the time, date and device columns whose non-missing cells are all numbers is
a channel; the rest are left out and reported in :attr:`ReplayPlan.skipped`.

>>> import io
>>> text = '''time,device,temp,note
... 2013-01-01T06:00:00Z,d1,1.5,ok
... 0,d2,NA,
... 2013-01-01 07:00:00,d1,inf,
... '''
>>> plan = load_readings(io.StringIO(text), "time", "device")
>>> [(r.device, r.seq, r.ts, r.values) for r in plan.readings]
[('d2', 0, 0.0, {}), ('d1', 0, 1357020000.0, {'temp': 1.5}), ('d1', 1, 1357023600.0, {})]
>>> plan.channels, plan.skipped
(('temp',), {'note': "not numeric: 'ok' on line 2"})

>>> text = 'logger v2\\nDate,Time,device,t\\n31/12/2013,23:30,d1,4.0\\n'
>>> plan = load_readings(io.StringIO(text), "Time", "device", date_col="Date",
...                      time_format="%d/%m/%Y %H:%M", skip_rows=1)
>>> [(r.ts, r.values) for r in plan.readings]
[(1388532600.0, {'t': 4.0})]

>>> text = 'time,device,zone,t\\n2013-07-01 08:00,jfk,America/New_York,4.0\\n'
>>> plan = load_readings(io.StringIO(text), "time", "device", tz_col="zone")
>>> [r.ts for r in plan.readings], plan.zones   # 08:00 EDT is 12:00 UTC
([1372680000.0], {'jfk': 'America/New_York'})

The service that publishes a plan is :class:`devices.replay.Replay`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any, TextIO

from broker.messages import Reading
from broker.topics import check_id, check_site
from devices.replay_times import MISSING, row_time, row_zone

Source = str | os.PathLike[str] | TextIO
CsvReader = Any  # the csv module's reader type has no public name in 3.11


@dataclass(frozen=True)
class ReplayPlan:
    """Readings in time order (stable), all published under one site."""

    site: str
    readings: list[Reading]
    channels: tuple[str, ...]
    #: Columns left out of the channels, each with the reason.
    skipped: dict[str, str]
    #: With a zone column: each device's zone (its last row's), for the time features.
    zones: dict[str, str] = field(default_factory=dict)

    @property
    def devices(self) -> tuple[str, ...]:
        """Device ids in order of their first reading."""
        return tuple(dict.fromkeys(r.device for r in self.readings))


def parse_value(text: str) -> float | None:
    """A channel cell as a float, or None when missing or not finite.

    >>> parse_value(" 2.5 "), parse_value("N/A"), parse_value("-inf")
    (2.5, None, None)
    >>> parse_value("abc")
    Traceback (most recent call last):
    ...
    ValueError: could not convert string to float: 'abc'
    """
    text = text.strip()
    if text.lower() in MISSING:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


@contextmanager
def _rows(source: Source) -> Iterator[tuple[str, CsvReader]]:
    """The source's display name and a csv reader over it (a path is opened and closed)."""
    if hasattr(source, "read"):
        yield getattr(source, "name", "<stream>"), csv.reader(source)  # type: ignore[arg-type]
        return
    name = os.fspath(source)  # type: ignore[arg-type]
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with open(source, encoding="utf-8-sig", newline="") as f:  # type: ignore[arg-type]
        try:
            yield name, csv.reader(f)
        except UnicodeDecodeError as exc:  # say which file, not just which codec
            raise ValueError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})"
                             ) from None


def _header(reader: CsvReader, name: str) -> list[str]:
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise ValueError(f"{name} is empty: it needs a header row")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ValueError(f"{name} repeats the column name(s) {', '.join(map(repr, repeated))}")
    return header


def _index(header: list[str], column: str, what: str, name: str) -> int:
    if column not in header:
        raise ValueError(f"{name} has no {what} {column!r}; its columns are: {', '.join(header)}")
    return header.index(column)


def _candidates(header: list[str], keys: set[int], columns: Sequence[str] | None,
                name: str) -> list[tuple[int, str]]:
    """(index, name) of the columns that may be channels: the chosen ones, or all others."""
    if columns is None:
        return [(i, h) for i, h in enumerate(header) if i not in keys]
    chosen = [(_index(header, c, "column", name), c) for c in dict.fromkeys(columns)]
    if not chosen:
        raise ValueError("columns= names no column")
    for i, c in chosen:
        if i in keys:
            raise ValueError(f"column {c!r} is the time or device column, not a channel")
    return chosen


def _device(text: str, where: str) -> str:
    try:
        return check_id(text.strip(), "device id")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _channel_values(row: list[str], candidates: list[tuple[int, str]], bad: dict[int, str],
                    explicit: bool, where: str, line: int) -> list[float | None]:
    """A row's candidate cells; a non-number is an error in a chosen column, else drops it."""
    values: list[float | None] = []
    for k, (i, column) in enumerate(candidates):
        value = None
        if k not in bad:
            try:
                value = parse_value(row[i])
            except ValueError:
                if explicit:
                    raise ValueError(f"{where}: column {column!r} holds {row[i]!r}, "
                                     "not a number") from None
                bad[k] = f"not numeric: {row[i]!r} on line {line}"
        values.append(value)
    return values


Row = tuple[float, str, list[float | None]]  # time, device, candidate values


def load_readings(source: Source, time_col: str, device_col: str, *,
                  columns: Sequence[str] | None = None, site: str = "s0",
                  boot: int = 0, date_col: str | None = None, time_format: str | None = None,
                  skip_rows: int = 0, tz_col: str | None = None) -> ReplayPlan:
    """Read a CSV (a path or an open text stream) into readings sorted by time, each device
    numbering its readings from 0 under boot id ``boot``. The time is ``time_col``'s cell, or
    ``date_col``'s and ``time_col``'s joined by a space, in ``time_format`` if one is given;
    the first ``skip_rows`` lines come before the header. With ``tz_col``, that column names
    each row's zone (an IANA name or an offset): a time without a zone is read in it, and each
    device's zone is in :attr:`ReplayPlan.zones`.

    Raises ValueError, naming the line, for a bad device id, time or row width; naming line
    and column for a non-numeric cell in ``columns``; listing the file's columns for an
    unknown column name.
    """
    check_site(site)
    if time_col == device_col:
        raise ValueError(f"the time and the device column are both {time_col!r}")
    if date_col in (time_col, device_col):
        raise ValueError(f"the date column {date_col!r} is the time or the device column")
    if tz_col is not None and tz_col in (time_col, device_col, date_col):
        raise ValueError(f"the zone column {tz_col!r} is the time, date or device column")
    if skip_rows < 0:
        raise ValueError("skip_rows must be >= 0")
    bad: dict[int, str] = {}  # candidate position -> why it is not a channel
    rows: list[Row] = []
    zones: dict[str, str] = {}  # device -> its zone's name
    known: dict[str, tzinfo] = {}
    with _rows(source) as (name, reader):
        for _ in range(skip_rows):
            next(reader, None)
        header = _header(reader, name)
        t = _index(header, time_col, "time column", name)
        d = _index(header, device_col, "device column", name)
        day = t if date_col is None else _index(header, date_col, "date column", name)
        z = None if tz_col is None else _index(header, tz_col, "zone column", name)
        candidates = _candidates(header, {t, d, day} | ({z} if z is not None else set()),
                                 columns, name)
        for row in reader:
            if not row:  # a blank line
                continue
            where = f"{name} line {reader.line_num}"
            if len(row) != len(header):
                raise ValueError(f"{where}: {len(row)} cells, but the header has {len(header)}")
            values = _channel_values(row, candidates, bad, columns is not None, where,
                                     reader.line_num)
            when = row[t] if day == t else f"{row[day].strip()} {row[t].strip()}"
            device, zone = _device(row[d], where), UTC
            if z is not None:
                zone = row_zone(row[z], where, known)
                zones[device] = row[z].strip()
            rows.append((row_time(when, where, time_format, zone), device, values))
    if not rows:
        raise ValueError(f"{name} has a header but no rows")
    if columns is None:  # a column without a single value carries nothing: leave it out too
        for k in range(len(candidates)):
            if k not in bad and all(values[k] is None for _, _, values in rows):
                bad[k] = "no values"
    keep = [(k, column) for k, (_, column) in enumerate(candidates) if k not in bad]
    return ReplayPlan(site=site, readings=_sorted_readings(rows, keep, boot),
                      channels=tuple(c for _, c in keep),
                      skipped={candidates[k][1]: why for k, why in sorted(bad.items())},
                      zones=zones)


def _sorted_readings(rows: list[Row], keep: list[tuple[int, str]], boot: int) -> list[Reading]:
    rows.sort(key=lambda row: row[0])  # stable: equal times keep the file's order
    seqs: dict[str, int] = {}
    readings = []
    for ts, device, values in rows:
        seq = seqs.get(device, 0)
        seqs[device] = seq + 1
        present = {c: v for k, c in keep if (v := values[k]) is not None}
        readings.append(Reading(device=device, seq=seq, ts=ts, values=present, boot=boot))
    return readings
