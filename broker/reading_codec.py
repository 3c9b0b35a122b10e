"""Readings on the wire: one reading, or one device's batch in the columns or rows layout.

Strict on the way in (typed errors from :mod:`broker.wire` with a counted ``reason``); the
columnar layout itself is :mod:`broker.columns`.

>>> r = Reading(device="s0-d0001", seq=7, ts=1732450000.0, values={"temperature": 21.5})
>>> decode_readings(encode_reading(r)) == [r]
True
>>> decode_readings(b'{"device": "s0-d0001"')
Traceback (most recent call last):
...
broker.wire.MalformedPayload: payload is not valid JSON: unexpected end of data: ...
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from broker.columns import columns_of, is_columnar, row_objects, shape_problem
from broker.field_checks import get_field, get_ident, get_integer, get_number, is_number
from broker.messages import Reading
from broker.wire import (
    MAX_PAYLOAD_BYTES,
    DecodeError,
    NonFiniteValue,
    SchemaError,
    as_object,
    load_json,
)

#: The largest ``seq`` or ``boot`` a gateway takes (they are 64-bit integers there).
INT64_MAX = 2**63 - 1


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    """A reading as the JSON object it is sent as; ``boot`` only when it is not 0.

    >>> reading_to_dict(Reading("d1", 0, 1.0, {}, boot=5))
    {'device': 'd1', 'boot': 5, 'seq': 0, 'ts': 1.0, 'values': {}}
    """
    if reading.boot:
        return {"device": reading.device, "boot": reading.boot, "seq": reading.seq,
                "ts": reading.ts, "values": reading.values}
    return {"device": reading.device, "seq": reading.seq, "ts": reading.ts,
            "values": reading.values}


def encode_reading(reading: Reading) -> bytes:
    """One reading as a JSON object."""
    return orjson.dumps(reading_to_dict(reading))


def encode_readings(readings: list[Reading]) -> bytes:
    """A batch in the rows layout: a JSON array of readings, all from one device."""
    return orjson.dumps([reading_to_dict(r) for r in readings])


def encode_reading_columns(readings: list[Reading]) -> bytes:
    """A batch in the columns layout (:mod:`broker.columns`): one device's readings, each key
    once per batch instead of once per reading. ValueError for no readings or mixed devices.

    >>> batch = [Reading("d1", 7, 1.0, {"t": 21.5}), Reading("d1", 8, 2.0, {"p": 3.0})]
    >>> encode_reading_columns(batch)
    b'{"device":"d1","seq":[7,8],"ts":[1.0,2.0],"values":{"t":[21.5,null],"p":[null,3.0]}}'
    >>> decode_readings(encode_reading_columns(batch)) == batch
    True
    """
    return orjson.dumps(columns_of(readings))


#: Layouts of a batch of readings: columns (:func:`encode_reading_columns`) or rows
#: (:func:`encode_readings`).
LAYOUTS = ("columns", "rows")


def check_layout(layout: str) -> str:
    """``layout`` if it is one of :data:`LAYOUTS`, else ValueError."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    return layout


def encode_batch(readings: list[Reading], layout: str = "columns") -> bytes:
    """One device's readings as one payload: a single reading as its object, more in
    ``layout``.

    >>> batch = [Reading("d1", 1, 1.0, {"t": 2.0}), Reading("d1", 2, 2.0, {"t": 2.5})]
    >>> [len(encode_batch(batch[:1])), len(encode_batch(batch)), len(encode_batch(batch, "rows"))]
    [51, 67, 105]
    """
    if len(readings) == 1:
        return encode_reading(readings[0])
    if check_layout(layout) == "columns":
        return encode_reading_columns(readings)
    return encode_readings(readings)


def reading_from_obj(obj: Any) -> Reading:
    """Check one decoded JSON value as a reading (null channel values count as missing)."""
    obj = as_object(obj, "reading")
    values = as_object(get_field(obj, "values", "reading"), "reading field 'values'")
    clean: dict[str, float] = {}
    for name, value in values.items():
        if type(value) is float and math.isfinite(value):  # the usual case, checked first
            clean[name] = value
            continue
        if value is None:
            continue
        if not is_number(value):
            raise SchemaError(f"channel {name!r} must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise NonFiniteValue(f"channel {name!r} is not finite")
        clean[name] = float(value)
    return Reading(
        device=get_ident(obj, "device", "reading"),
        seq=get_integer(obj, "seq", "reading"),
        ts=get_number(obj, "ts", "reading"),
        values=clean,
        boot=_boot(obj) if "boot" in obj else 0,
    )


def _boot(obj: dict[str, Any]) -> int:
    """A reading's boot id: an integer from 0 to :data:`INT64_MAX`.

    >>> _boot({"boot": 2**63})
    Traceback (most recent call last):
    ...
    broker.wire.OutOfRange: reading field 'boot' is beyond int64 (max 9223372036854775807)
    """
    return get_integer(obj, "boot", "reading")


def decode_readings(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> list[Reading]:
    """Decode one reading or a batch; any bad item rejects the payload.

    Use :func:`decode_reading_items` to keep the good items of a mixed batch.
    """
    items = decode_reading_items(payload, max_bytes)
    for item in items:
        if isinstance(item, DecodeError):
            raise item
    return items  # type: ignore[return-value]


def decode_reading_items(
    payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES
) -> list[Reading | DecodeError]:
    """Decode a payload into its readings, each item either a Reading or its own error.

    Three layouts: one reading object; a JSON array of them (rows); an object whose "seq" is
    a list (columns, see :mod:`broker.columns`). A columnar row is checked as the reading
    object it stands for, so a bad row is its own item; a bad "device" or a bad shape (empty
    "seq", a column missing, not a list, or not as long as "seq") is raised for the whole
    payload, like unparsable JSON. A number too large for a float (valid JSON) is refused
    where it is, as non-finite: in a batch only its reading is.

    >>> items = decode_reading_items(b'[{"device":"d1","seq":1,"ts":1.0,"values":{}}, 3]')
    >>> [type(i).__name__ for i in items]
    ['Reading', 'SchemaError']
    >>> items = decode_reading_items(b'{"device":"d1","seq":[1,-2],"ts":[1,2],"values":{}}')
    >>> [type(i).__name__ for i in items]
    ['Reading', 'SchemaError']
    """
    data = load_json(payload, max_bytes, strict=True, overflow=True)
    if is_columnar(data):
        get_ident(data, "device", "columnar batch")
        problem = shape_problem(data)
        if problem is not None:
            raise SchemaError(problem)
        data = row_objects(data)
    elif isinstance(data, dict):
        data = [data]
    elif not isinstance(data, list) or not data:
        raise SchemaError("payload must be a reading object or a non-empty list of readings")
    items: list[Reading | DecodeError] = []
    for obj in data:
        try:
            items.append(reading_from_obj(obj))
        except DecodeError as exc:
            items.append(exc)
    return items
