"""The wire format: every payload fleetlearn sends is encoded and decoded here.

JSON through orjson, strict on the way in (typed errors with a counted ``reason``), never pickle.

>>> r = Reading(device="s0-d0001", seq=7, ts=1732450000.0, values={"temperature": 21.5})
>>> decode_readings(encode_reading(r)) == [r]
True
>>> decode_readings(b'{"device": "s0-d0001"')
Traceback (most recent call last):
...
broker.codec.MalformedPayload: payload is not valid JSON: unexpected end of data: ...
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from broker.columns import columns_of, is_columnar, row_objects, shape_problem
from broker.topics import ID_PATTERN

#: Default cap on one payload, checked before any decoding.
MAX_PAYLOAD_BYTES = 64 * 1024

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


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


class DuplicateKey(SchemaError):
    reason = "duplicate_key"


class BadId(SchemaError):
    reason = "bad_id"


class ShapeError(SchemaError):
    """A vector whose length does not fit the features it names."""

    reason = "wrong_shape"


# ---------------------------------------------------------------- small checks


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field(obj: dict[str, Any], name: str, what: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise SchemaError(f"{what} has no {name!r}") from None


def _number(obj: dict[str, Any], name: str, what: str) -> float:
    value = _field(obj, name, what)
    if not _is_number(value):
        raise SchemaError(f"{what} field {name!r} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise NonFiniteValue(f"{what} field {name!r} is not finite")
    return float(value)


def _integer(obj: dict[str, Any], name: str, what: str, minimum: int = 0) -> int:
    value = _field(obj, name, what)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SchemaError(f"{what} field {name!r} must be an integer")
    if value < minimum:
        raise SchemaError(f"{what} field {name!r} must be >= {minimum}")
    return value


def _ident(obj: dict[str, Any], name: str, what: str) -> str:
    value = _field(obj, name, what)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise BadId(f"{what} field {name!r} is not a valid id")
    return value


def _vector(obj: dict[str, Any], name: str, what: str, size: int) -> np.ndarray:
    value = _field(obj, name, what)
    if not isinstance(value, list):
        raise SchemaError(f"{what} field {name!r} must be a list of {size} numbers")
    if len(value) != size:
        raise ShapeError(f"{what} field {name!r} has {len(value)} numbers, not {size}")
    if not all(_is_number(v) for v in value):
        raise SchemaError(f"{what} field {name!r} must hold numbers only")
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise NonFiniteValue(f"{what} field {name!r} holds a non-finite number")
    return array


def _name(obj: dict[str, Any], name: str, what: str) -> str:
    value = _field(obj, name, what)
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{what} field {name!r} must be a non-empty name")
    return value


def _names(obj: dict[str, Any], name: str, what: str) -> tuple[str, ...]:
    value = _field(obj, name, what)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"{what} field {name!r} must be a list of names")
    if len(set(value)) != len(value):
        raise SchemaError(f"{what} field {name!r} repeats a name")
    return tuple(value)


def _load(payload: bytes, max_bytes: int, strict: bool = False,
          overflow: bool = False) -> Any:
    """Parse JSON after the size cap; ``strict`` also refuses duplicate keys. With ``overflow``
    a number too large for a float is parsed as an infinity for the caller to refuse where it
    is (one reading of a batch); else it refuses the whole payload."""
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


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


# ---------------------------------------------------------------- readings


@dataclass(frozen=True)
class Reading:
    """One sensor reading: a device's numbered sample of named channels."""

    device: str
    seq: int
    ts: float
    values: dict[str, float]


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    return {"device": reading.device, "seq": reading.seq, "ts": reading.ts,
            "values": reading.values}


def encode_reading(reading: Reading) -> bytes:
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
    obj = _object(obj, "reading")
    values = _object(_field(obj, "values", "reading"), "reading field 'values'")
    clean: dict[str, float] = {}
    for name, value in values.items():
        if type(value) is float and math.isfinite(value):  # the usual case, checked first
            clean[name] = value
            continue
        if value is None:
            continue
        if not _is_number(value):
            raise SchemaError(f"channel {name!r} must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            raise NonFiniteValue(f"channel {name!r} is not finite")
        clean[name] = float(value)
    return Reading(
        device=_ident(obj, "device", "reading"),
        seq=_integer(obj, "seq", "reading"),
        ts=_number(obj, "ts", "reading"),
        values=clean,
    )


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
    data = _load(payload, max_bytes, strict=True, overflow=True)
    if is_columnar(data):
        _ident(data, "device", "columnar batch")
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


# ---------------------------------------------------------------- learning messages


@dataclass(frozen=True)
class LinearParams:
    """Weights and intercept of a linear model, in the raw units of the named features."""

    features: tuple[str, ...]
    weights: np.ndarray
    intercept: float

    def predict(self, values: dict[str, float]) -> float:
        """Predict from raw channel values.

        >>> p = LinearParams(("a", "b"), np.array([2.0, -1.0]), 0.5)
        >>> p.predict({"a": 1.0, "b": 3.0})
        -0.5
        """
        x = np.fromiter((values[f] for f in self.features), float, len(self.features))
        return float(x @ self.weights + self.intercept)


@dataclass(frozen=True)
class Scaler:
    """Running moments of the features then the target (Welford's count, mean and M2).

    They travel with updates (what a learner saw since its base model) and models (what the
    whole fleet saw), and merge exactly (:func:`learners.stats.merge`).
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, size: int) -> Scaler:
        return cls(0, np.zeros(size), np.zeros(size))


def _scaler_from(obj: dict[str, Any], what: str, size: int) -> Scaler:
    sub = _object(_field(obj, "scaler", what), f"{what} field 'scaler'")
    where = f"{what} scaler"
    scaler = Scaler(_integer(sub, "count", where), _vector(sub, "mean", where, size),
                    _vector(sub, "m2", where, size))
    if np.any(scaler.m2 < 0):
        raise SchemaError(f"{where} has a negative M2")
    return scaler


def _scaler_to(scaler: Scaler) -> dict[str, Any]:
    return {"count": scaler.count, "mean": scaler.mean, "m2": scaler.m2}


KINDS = ("regression", "binary")


def _kind(obj: dict[str, Any], what: str) -> str:
    kind = _field(obj, "kind", what)
    if kind not in KINDS:
        raise SchemaError(f"{what} field 'kind' must be one of {KINDS}")
    return kind


def _params_from(obj: dict[str, Any], what: str) -> LinearParams:
    features = _names(obj, "features", what)
    return LinearParams(
        features=features,
        weights=_vector(obj, "weights", what, len(features)),
        intercept=_number(obj, "intercept", what),
    )


def _params_to(params: LinearParams) -> dict[str, Any]:
    return {"features": list(params.features), "weights": params.weights,
            "intercept": params.intercept}


@dataclass(frozen=True)
class Update:
    """A learner's parameters after ``n`` samples learned on top of model ``base_version``."""

    learner: str
    seq: int
    base_version: int
    n: int
    target: str
    params: LinearParams
    ts: float
    scaler: Scaler
    kind: str = "regression"
    metrics: dict[str, float] = field(default_factory=dict)
    drift: int = 0  # concept changes the learner detected since its previous update


def encode_update(update: Update) -> bytes:
    return orjson.dumps(
        {"learner": update.learner, "seq": update.seq, "base_version": update.base_version,
         "n": update.n, "target": update.target, "kind": update.kind, "ts": update.ts,
         **_params_to(update.params), "scaler": _scaler_to(update.scaler),
         "metrics": update.metrics, "drift": update.drift},
        option=_NUMPY,
    )


def decode_update(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Update:
    """Decode an update; its ``n`` may be any integer (the aggregator judges counts)."""
    obj = _object(_load(payload, max_bytes), "update")
    metrics = _object(obj.get("metrics", {}), "update field 'metrics'")
    params = _params_from(obj, "update")
    return Update(
        learner=_ident(obj, "learner", "update"),
        seq=_integer(obj, "seq", "update"),
        base_version=_integer(obj, "base_version", "update"),
        n=_integer(obj, "n", "update", minimum=-(2**63)),
        target=_name(obj, "target", "update"),
        params=params,
        ts=_number(obj, "ts", "update"),
        scaler=_scaler_from(obj, "update", len(params.features) + 1),
        kind=_kind(obj, "update"),
        metrics={k: float(v) for k, v in metrics.items()
                 if _is_number(v) and math.isfinite(v)},
        drift=_integer(obj, "drift", "update") if "drift" in obj else 0,
    )


@dataclass(frozen=True)
class Model:
    """A synchronized model version, as the aggregator broadcasts it."""

    version: int
    ts: float
    n: int
    contributors: tuple[str, ...]
    target: str
    params: LinearParams
    scaler: Scaler
    kind: str = "regression"
    notes: dict[str, Any] = field(default_factory=dict)


def encode_model(model: Model) -> bytes:
    return orjson.dumps(
        {"version": model.version, "ts": model.ts, "n": model.n,
         "contributors": list(model.contributors), "target": model.target,
         "kind": model.kind, **_params_to(model.params), "scaler": _scaler_to(model.scaler),
         "notes": model.notes},
        option=_NUMPY,
    )


def decode_model(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Model:
    obj = _object(_load(payload, max_bytes), "model")
    contributors = _field(obj, "contributors", "model")
    if not isinstance(contributors, list) or not all(isinstance(c, str) for c in contributors):
        raise SchemaError("model field 'contributors' must be a list of ids")
    params = _params_from(obj, "model")
    return Model(
        version=_integer(obj, "version", "model", minimum=1),
        ts=_number(obj, "ts", "model"),
        n=_integer(obj, "n", "model"),
        contributors=tuple(contributors),
        target=_name(obj, "target", "model"),
        params=params,
        scaler=_scaler_from(obj, "model", len(params.features) + 1),
        kind=_kind(obj, "model"),
        notes=_object(obj.get("notes", {}), "model field 'notes'"),
    )


# ---------------------------------------------------------------- operational messages


def encode_json(obj: dict[str, Any]) -> bytes:
    """Metrics, dead letters, predictions and status: plain JSON objects."""
    return orjson.dumps(obj, option=_NUMPY | orjson.OPT_NON_STR_KEYS)


def decode_json_object(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Decode a plain JSON object (metrics, predictions), strictly.

    >>> decode_json_object(b'{"n": 1}')
    {'n': 1}
    """
    return _object(_load(payload, max_bytes), "payload")


def excerpt(payload: bytes, limit: int = 200) -> str:
    """A printable head of a payload for a dead letter.

    >>> excerpt(b"hello world", limit=5)
    'hello…'
    """
    text = payload[:limit].decode("utf-8", errors="backslashreplace")
    return text[:limit] + ("…" if len(payload) > limit or len(text) > limit else "")
