"""The columnar layout of a batch: one device's readings as columns, each key sent once.

    {"device": "s0-d0001", "boot": 3, "seq": [7, 8], "ts": [1.0, 2.0],
     "values": {"temperature": [21.5, null], "power": [3.1, 3.2]}}

A JSON object whose ``"seq"`` is a list is a columnar batch. Row ``i`` stands for the reading
object ``{"device": device, "boot": boot, "seq": seq[i], "ts": ts[i], "values": {ch: col[i],
...}}``, null meaning the channel is missing; ``"boot"`` (optional) is one value for the whole
batch, since a batch is one device's consecutive readings of one run. These helpers are pure and
know nothing of the checks a reading gets: :mod:`broker.reading_codec` checks each row object
as it checks a reading of the rows layout, so both layouts accept and refuse exactly the same
readings.

>>> obj = {"device": "d1", "seq": [7, 8], "ts": [1.0, 2.0], "values": {"t": [21.5, None]}}
>>> is_columnar(obj), shape_problem(obj)
(True, None)
>>> list(row_objects(obj))
[{'device': 'd1', 'seq': 7, 'ts': 1.0, 'values': {'t': 21.5}},
 {'device': 'd1', 'seq': 8, 'ts': 2.0, 'values': {}}]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from broker.messages import Reading


def is_columnar(data: Any) -> bool:
    """A top-level JSON value is a columnar batch when it is an object whose "seq" is a list.

    >>> is_columnar({"seq": []}), is_columnar({"seq": 3}), is_columnar([{"seq": [1]}])
    (True, False, False)
    """
    return isinstance(data, dict) and isinstance(data.get("seq"), list)


def columns_of(readings: Sequence[Reading]) -> dict[str, Any]:
    """One device's readings as a columnar object. The channels are the union of the readings'
    channels in first-seen order; a reading without a channel has None (null) there.

    >>> columns_of([Reading("d1", 7, 1.0, {"t": 21.5}), Reading("d1", 8, 2.0, {"p": 3.0})])
    {'device': 'd1', 'seq': [7, 8], 'ts': [1.0, 2.0],
     'values': {'t': [21.5, None], 'p': [None, 3.0]}}
    >>> columns_of([Reading("d1", 7, 1.0, {}), Reading("d2", 1, 1.0, {})])
    Traceback (most recent call last):
    ...
    ValueError: a columnar batch holds one device's readings, not d1 and d2
    >>> columns_of([Reading("d1", 7, 1.0, {}, boot=2), Reading("d1", 0, 1.0, {}, boot=3)])
    Traceback (most recent call last):
    ...
    ValueError: a columnar batch holds one boot's readings, not 2 and 3
    """
    if not readings:
        raise ValueError("a columnar batch needs at least one reading")
    device, boot = readings[0].device, readings[0].boot
    channels: dict[str, None] = {}
    for r in readings:
        if r.device != device:
            raise ValueError(f"a columnar batch holds one device's readings, not {device} "
                             f"and {r.device}")
        if r.boot != boot:
            raise ValueError(f"a columnar batch holds one boot's readings, not {boot} "
                             f"and {r.boot}")
        channels.update(dict.fromkeys(r.values))
    head: dict[str, Any] = {"device": device, "boot": boot} if boot else {"device": device}
    return {**head, "seq": [r.seq for r in readings], "ts": [r.ts for r in readings],
            "values": {ch: [r.values.get(ch) for r in readings] for ch in channels}}


def shape_problem(obj: dict[str, Any]) -> str | None:
    """What makes a columnar object unusable as a whole (its "device" aside), or None.

    "seq" must be a non-empty list; "ts" a list and "values" an object of lists, each as long
    as "seq". The rows' contents are not looked at here.

    >>> shape_problem({"seq": [1, 2], "ts": [1.0], "values": {}})
    "columnar batch field 'ts' has 1 entries, but 'seq' has 2"
    >>> shape_problem({"seq": [1], "ts": [1.0], "values": {"t": 21.5}})
    "columnar batch channel 't' must be a list, not float"
    """
    seq = obj.get("seq")
    if not isinstance(seq, list) or not seq:
        return "columnar batch field 'seq' must be a non-empty list"
    n = len(seq)
    if "ts" not in obj:
        return "columnar batch has no 'ts'"
    ts = obj["ts"]
    if not isinstance(ts, list):
        return f"columnar batch field 'ts' must be a list, not {type(ts).__name__}"
    if len(ts) != n:
        return f"columnar batch field 'ts' has {len(ts)} entries, but 'seq' has {n}"
    if "values" not in obj:
        return "columnar batch has no 'values'"
    values = obj["values"]
    if not isinstance(values, dict):
        return f"columnar batch field 'values' must be an object, not {type(values).__name__}"
    for name, column in values.items():
        if not isinstance(column, list):
            return f"columnar batch channel {name!r} must be a list, not {type(column).__name__}"
        if len(column) != n:
            return f"columnar batch channel {name!r} has {len(column)} entries, but 'seq' has {n}"
    return None


def row_objects(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each row of a well-shaped columnar object (see :func:`shape_problem`) as the reading
    object it stands for; null channel values are left out, the batch's "boot" is each row's.

    >>> list(row_objects({"device": "d", "boot": 4, "seq": [1], "ts": [1.0], "values": {}}))
    [{'device': 'd', 'seq': 1, 'ts': 1.0, 'values': {}, 'boot': 4}]
    """
    device, ts, values = obj["device"], obj["ts"], obj["values"].items()
    boot = {"boot": obj["boot"]} if "boot" in obj else {}
    for i, seq in enumerate(obj["seq"]):
        yield {"device": device, "seq": seq, "ts": ts[i],
               "values": {ch: column[i] for ch, column in values if column[i] is not None},
               **boot}
