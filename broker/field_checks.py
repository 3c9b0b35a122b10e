"""Typed checks of one field of a decoded JSON object, each refusal a counted
:class:`broker.wire.DecodeError` that names the field and ``what`` holds it.

>>> obj = {"device": "d1", "seq": 3, "weights": [1, 2.5]}
>>> get_ident(obj, "device", "reading"), get_integer(obj, "seq", "reading")
('d1', 3)
>>> get_vector(obj, "weights", "update", 2).tolist()
[1.0, 2.5]
>>> get_vector(obj, "weights", "update", 3)
Traceback (most recent call last):
...
broker.wire.ShapeError: update field 'weights' has 2 numbers, not 3
>>> get_number(obj, "ts", "reading")
Traceback (most recent call last):
...
broker.wire.SchemaError: reading has no 'ts'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from broker.topics import ID_PATTERN
from broker.wire import BadId, NonFiniteValue, OutOfRange, SchemaError, ShapeError


def is_number(value: Any) -> bool:
    """An int or a float, not a bool.

    >>> is_number(1), is_number(2.5), is_number(True), is_number("3")
    (True, True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def get_field(obj: dict[str, Any], name: str, what: str) -> Any:
    """The value of field ``name``, which must be there."""
    try:
        return obj[name]
    except KeyError:
        raise SchemaError(f"{what} has no {name!r}") from None


def get_number(obj: dict[str, Any], name: str, what: str) -> float:
    """A finite number, as a float."""
    value = get_field(obj, name, what)
    if not is_number(value):
        raise SchemaError(f"{what} field {name!r} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise NonFiniteValue(f"{what} field {name!r} is not finite")
    return float(value)


#: The largest integer any field may hold: what int64 (and orjson, when it is written again)
#: can carry. A version or seq beyond it is refused at decode, never later in a merge.
INT64_MAX = 2**63 - 1


def get_integer(obj: dict[str, Any], name: str, what: str, minimum: int = 0) -> int:
    """An integer (not a bool) of at least ``minimum`` and at most :data:`INT64_MAX`.

    >>> get_integer({"version": 2**64 - 1}, "version", "model")
    Traceback (most recent call last):
    ...
    broker.wire.OutOfRange: model field 'version' is beyond int64 (max 9223372036854775807)
    """
    value = get_field(obj, name, what)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaError(f"{what} field {name!r} must be an integer")
    if value < minimum:
        raise SchemaError(f"{what} field {name!r} must be >= {minimum}")
    if value > INT64_MAX:
        raise OutOfRange(f"{what} field {name!r} is beyond int64 (max {INT64_MAX})")
    return value


def get_ident(obj: dict[str, Any], name: str, what: str) -> str:
    """An id as :data:`broker.topics.ID_PATTERN` allows (it goes into topics)."""
    value = get_field(obj, name, what)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise BadId(f"{what} field {name!r} is not a valid id")
    return value


def get_vector(obj: dict[str, Any], name: str, what: str, size: int) -> np.ndarray:
    """A list of ``size`` finite numbers, as a float array."""
    value = get_field(obj, name, what)
    if not isinstance(value, list):
        raise SchemaError(f"{what} field {name!r} must be a list of {size} numbers")
    if len(value) != size:
        raise ShapeError(f"{what} field {name!r} has {len(value)} numbers, not {size}")
    if not all(is_number(v) for v in value):
        raise SchemaError(f"{what} field {name!r} must hold numbers only")
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise NonFiniteValue(f"{what} field {name!r} holds a non-finite number")
    return array


def get_name(obj: dict[str, Any], name: str, what: str) -> str:
    """A non-empty string."""
    value = get_field(obj, name, what)
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{what} field {name!r} must be a non-empty name")
    return value


def get_names(obj: dict[str, Any], name: str, what: str) -> tuple[str, ...]:
    """A list of distinct non-empty strings, as a tuple."""
    value = get_field(obj, name, what)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"{what} field {name!r} must be a list of names")
    if len(set(value)) != len(value):
        raise SchemaError(f"{what} field {name!r} repeats a name")
    return tuple(value)
