"""JSON on the wire: the size cap, strict parsing with typed errors, and plain JSON objects.

Every payload is JSON through orjson, never pickle. A payload that cannot be accepted raises a
:class:`DecodeError` whose ``reason`` is the short name it is counted under. The typed field
checks are :mod:`broker.field_checks`; the message formats :mod:`broker.reading_codec` and
:mod:`broker.model_codec`.

>>> decode_json_object(encode_json({"n": 1, "ok": True}))
{'n': 1, 'ok': True}
>>> load_json(b'{"device": "s0-d0001"', MAX_PAYLOAD_BYTES)
Traceback (most recent call last):
...
broker.wire.MalformedPayload: payload is not valid JSON: unexpected end of data: ...
>>> load_json(b'{"a": 1, "a": 2}', MAX_PAYLOAD_BYTES, strict=True)
Traceback (most recent call last):
...
broker.wire.DuplicateKey: payload repeats a key in one object
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

#: Default cap on one payload, checked before any decoding.
MAX_PAYLOAD_BYTES = 64 * 1024

#: orjson options for payloads that hold numpy arrays (model and update vectors).
NUMPY = orjson.OPT_SERIALIZE_NUMPY


class DecodeError(ValueError):
    """A payload that cannot be accepted. ``reason`` is the short name it is counted under."""

    reason = "invalid"


class PayloadTooLarge(DecodeError):
    reason = "too_large"


class MalformedPayload(DecodeError):
    reason = "malformed"


class SchemaError(DecodeError):
    reason = "schema"


class NonFiniteValue(DecodeError):
    reason = "non_finite"


class OutOfRange(SchemaError):
    """An integer beyond int64 (a version or seq no merge or encoder could carry)."""

    reason = "out_of_range"


class DuplicateKey(SchemaError):
    reason = "duplicate_key"


class BadId(SchemaError):
    reason = "bad_id"


class ShapeError(SchemaError):
    """A vector whose length does not fit the features it names."""

    reason = "wrong_shape"


# ---------------------------------------------------------------- parsing


def load_json(payload: bytes, max_bytes: int, strict: bool = False,
              overflow: bool = False) -> Any:
    """Parse JSON after the size cap; ``strict`` also refuses duplicate keys. With ``overflow``
    a number too large for a float is parsed as an infinity for the caller to refuse where it
    is (one reading of a batch); else it refuses the whole payload.

    >>> load_json(b'[1e400]', 100, overflow=True)
    [inf]
    >>> load_json(b'[1e400]', 100)
    Traceback (most recent call last):
    ...
    broker.wire.NonFiniteValue: payload holds a number too large for a float
    """
    if len(payload) > max_bytes:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds the {max_bytes}-byte cap")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if overflow:
            return _load_overflowing(payload, exc)
        raise _explain_unparsable(payload, exc) from None
    if strict and len(_KEY_END.findall(payload)) != _count_keys(data):
        _refuse_duplicate_keys(payload)
    return data


# Every key of a JSON object ends in `"` then `:`; so do some string contents, never fewer.
# When the count of these ends equals the count of parsed keys, no key was repeated (orjson
# keeps the last of repeated keys silently); only otherwise is the slow exact check needed.
_KEY_END = re.compile(rb'"\s*:')


def _count_keys(data: Any) -> int:
    """Keys of every object in a parsed JSON value (a loop, not a generator: it runs on every
    reading).

    >>> _count_keys([{"a": 1, "b": {"c": [{"d": 2}]}}, 3])
    4
    """
    if isinstance(data, dict):
        n = len(data)
        values = data.values()
    elif isinstance(data, list):
        n, values = 0, data
    else:
        return 0
    for v in values:
        if isinstance(v, dict | list):
            n += _count_keys(v)
    return n


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's pairs as a dict, or :class:`DuplicateKey` if a key repeats."""
    if len({k for k, _ in pairs}) != len(pairs):
        raise DuplicateKey("payload repeats a key in one object")
    return dict(pairs)


def _refuse_duplicate_keys(payload: bytes) -> None:
    json.loads(payload, object_pairs_hook=_unique_keys)


def _explain_unparsable(payload: bytes, exc: Exception) -> DecodeError:
    """NaN, Infinity and overflowing numbers are their own reason; the rest is malformed."""
    try:
        data = json.loads(payload, parse_constant=_refuse_constant)
    except NonFiniteValue as non_finite:
        return non_finite
    except (ValueError, RecursionError):
        return MalformedPayload(f"payload is not valid JSON: {exc}")
    if _has_non_finite(data):
        return NonFiniteValue("payload holds a number too large for a float")
    return MalformedPayload(f"payload is not valid JSON: {exc}")


def _load_overflowing(payload: bytes, exc: Exception) -> Any:
    """What orjson would have made of JSON it refused for an overflowing number alone, that
    number an infinity; any other refusal is raised as :func:`_explain_unparsable` says.

    >>> _load_overflowing(b'[1e400, 18446744073709551616, 3]', ValueError("overflow"))
    [inf, 1.8446744073709552e+19, 3]
    """
    try:
        data = json.loads(payload, parse_constant=_refuse_constant, parse_int=_orjson_int,
                          object_pairs_hook=_unique_keys)
        orjson.dumps(data)  # anything else orjson refuses (a lone surrogate) is refused still
    except DecodeError:
        raise
    except (ValueError, RecursionError, TypeError):
        raise MalformedPayload(f"payload is not valid JSON: {exc}") from None
    if not _has_non_finite(data):
        raise MalformedPayload(f"payload is not valid JSON: {exc}")
    return data


def _orjson_int(text: str) -> int | float:
    """An integer as orjson reads it: a float outside the 64-bit range."""
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)


def _has_non_finite(data: Any) -> bool:
    if isinstance(data, float):
        return not math.isfinite(data)
    if isinstance(data, dict):
        return any(_has_non_finite(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_non_finite(v) for v in data)
    return False


def _refuse_constant(name: str) -> float:
    raise NonFiniteValue(f"payload holds {name}, which is not a finite number")


def as_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (a dict), else :class:`SchemaError` naming ``what``.

    >>> as_object([1], "update")
    Traceback (most recent call last):
    ...
    broker.wire.SchemaError: update must be a JSON object, not list
    """
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


# ---------------------------------------------------------------- operational messages


def encode_json(obj: dict[str, Any]) -> bytes:
    """Metrics, dead letters, predictions and status: plain JSON objects.

    >>> encode_json({"n": 1, 3: "non-str keys too"})
    b'{"n":1,"3":"non-str keys too"}'
    """
    return orjson.dumps(obj, option=NUMPY | orjson.OPT_NON_STR_KEYS)


def decode_json_object(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Decode a plain JSON object (metrics, predictions), strictly.

    >>> decode_json_object(b'{"n": 1}')
    {'n': 1}
    """
    return as_object(load_json(payload, max_bytes), "payload")


def excerpt(payload: bytes, limit: int = 200) -> str:
    """A printable head of a payload for a dead letter.

    >>> excerpt(b"hello world", limit=5)
    'hello…'
    """
    text = payload[:limit].decode("utf-8", errors="backslashreplace")
    return text[:limit] + ("…" if len(payload) > limit or len(text) > limit else "")
