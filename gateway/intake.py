"""From a payload to columns, on the fast path: every reading well formed and of the topic's
device, as one reading, an array of readings, or one columnar batch.

msgspec decodes and type-checks the payload in one pass in C (seq an integer >= 0 and below
2**63, not a bool; ts and channel values numbers; null a missing value; numbers beyond a double
refused; ``boot``, when there, like ``seq``). Anything it refuses, a payload of another device,
a repeated key or an extra field returns None, and the caller takes the careful path:
:func:`broker.reading_codec.decode_reading_items`, which explains each reading's fault. So the
fast path never decides a refusal; it only recognises payloads that have none.

>>> rows = b'[{"device":"d","seq":1,"ts":5.0,"values":{"a":1.5}},' \\
...        b'{"device":"d","seq":2,"ts":6,"values":{"a":null,"b":2.0}}]'
>>> fast_columns(rows, "d", ("a", "b"))
([1, 2], [5.0, 6.0], [[1.5, None], [None, 2.0]], [0, 0])
>>> cols = b'{"device":"d","boot":3,"seq":[1,2],"ts":[5.0,6],"values":{"a":[1.5,null]}}'
>>> fast_columns(cols, "d", ("a", "b"))
([1, 2], [5.0, 6.0], [[1.5, None], [None, None]], [3, 3])
>>> fast_columns(rows, "other", ("a",)) is None    # another device's readings
True
>>> fast_columns(b'{"device":"d","seq":true,"ts":5.0,"values":{}}', "d", ("a",)) is None
True
"""

from __future__ import annotations

from functools import cache
from operator import itemgetter
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from broker.reading_codec import INT64_MAX

Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class _Reading(msgspec.Struct, gc=False):
    device: str
    seq: Seq
    ts: float
    values: dict[str, float | None]
    boot: Seq | UnsetType = UNSET


class _Columns(msgspec.Struct, gc=False):
    device: str
    seq: list[Seq]
    ts: list[float]
    values: dict[str, list[float | None]]
    boot: Seq | UnsetType = UNSET


_ONE_OR_MANY = msgspec.json.Decoder(_Reading | list[_Reading])
_COLUMNS = msgspec.json.Decoder(_Columns)
_FIELDS = 4  # keys of a reading (or a columnar batch) besides its channels

#: seqs, tss, one sequence per channel (None: missing), boots (0 where a reading has none)
Columns = tuple[Any, Any, list[Any], list[int]]


def fast_columns(payload: bytes, device: str, channels: tuple[str, ...]) -> Columns | None:
    """The seq, ts, channel and boot columns of a payload with nothing to refuse, else None.

    Keys are counted against the payload's colons: every key of a JSON object ends in a colon,
    and so may some string contents, never fewer; equal counts mean no key was repeated and
    none was extra (the decoder keeps the last of repeated keys silently)."""
    try:
        if b'"seq":[' in payload:
            return _columnar(_COLUMNS.decode(payload), payload, device, channels)
        data = _ONE_OR_MANY.decode(payload)
    except msgspec.DecodeError:  # ValidationError included
        return None
    if type(data) is _Reading:
        values, boot = data.values, data.boot
        keys = _FIELDS + len(values)
        if boot is UNSET:
            boot = 0
        else:
            keys += 1
        if data.device != device or payload.count(b":") != keys:
            return None
        get = values.get
        return (data.seq,), (data.ts,), [(get(name),) for name in channels], (boot,)
    if not data or [r.device for r in data].count(device) != len(data):
        return None
    values = [r.values for r in data]
    boots = [r.boot for r in data]
    unset = boots.count(UNSET)
    if payload.count(b":") != (_FIELDS + 1) * len(data) - unset + sum(map(len, values)):
        return None
    if unset:
        boots = [0 if b is UNSET else b for b in boots]
    try:  # the usual case, every reading has every channel: picked out in C
        columns = [list(map(pick, values)) for pick in _pickers(channels)]
    except KeyError:
        columns = [[v.get(name) for v in values] for name in channels]
    return [r.seq for r in data], [r.ts for r in data], columns, boots


@cache
def _pickers(channels: tuple[str, ...]) -> list[itemgetter]:
    return [itemgetter(name) for name in channels]


def _columnar(data: _Columns, payload: bytes, device: str, channels: tuple[str, ...]
              ) -> Columns | None:
    n = len(data.seq)
    values, boot = data.values, data.boot
    keys = _FIELDS + len(values)
    if boot is UNSET:
        boot = 0
    else:
        keys += 1
    if (data.device != device or n == 0 or len(data.ts) != n
            or any(len(column) != n for column in values.values())
            or payload.count(b":") != keys):
        return None
    missing = [None] * n
    return data.seq, data.ts, [values.get(name, missing) for name in channels], [boot] * n
