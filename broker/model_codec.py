"""Learning messages on the wire: a learner's update and an aggregated model version.

Both carry linear parameters and moments (:mod:`broker.messages`) as JSON through orjson;
decoding is strict (typed errors from :mod:`broker.wire`) and checks every vector's length
against the features named. Both carry the wire format they are written in, ``"format":
"MAJOR.MINOR"`` (:data:`FORMAT`; docs/model-format.md): a reader takes any minor of its major
(members it does not know are ignored) and a message with no ``format`` as 1.0 (what writers
before the field wrote), and refuses a newer major (:class:`FormatError`, counted as
``format``).

>>> params = LinearParams(("a",), np.array([2.0]), 0.5)
>>> scaler = Scaler(3, np.array([1.0, 4.0]), np.array([2.0, 8.0]))
>>> model = Model(1, 10.0, 3, ("g1",), "y", params, scaler)
>>> back = decode_model(encode_model(model))
>>> back.version, back.params.weights.tolist(), back.scaler.m2.tolist()
(1, [2.0], [2.0, 8.0])
>>> decode_model(encode_model(model).replace(b'"weights":[2.0]', b'"weights":[2.0,1.0]'))
Traceback (most recent call last):
...
broker.wire.ShapeError: model field 'weights' has 2 numbers, not 1
>>> decode_model(encode_model(model).replace(b'"format":"1.1"', b'"format":"2.0"'))
Traceback (most recent call last):
...
broker.model_codec.FormatError: model format 2.0 is newer than this reader's 1.x: ...
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import orjson

from broker.field_checks import (
    get_field,
    get_ident,
    get_integer,
    get_name,
    get_names,
    get_number,
    get_vector,
    is_number,
)
from broker.messages import KINDS, LinearParams, Model, Scaler, Update
from broker.wire import MAX_PAYLOAD_BYTES, NUMPY, SchemaError, as_object, load_json
from broker.zones import check_zone

#: The wire format this module writes: MAJOR.MINOR. A new minor only adds members an older
#: reader may ignore; anything else (a member removed, renamed or read differently) is a new
#: major, which older readers refuse.
FORMAT = "1.1"  # 1.1: the optional local_time member
_FORMAT = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


class FormatError(SchemaError):
    """A message in a format this reader cannot read: a newer major, or no format at all."""

    reason = "format"


def check_format(obj: dict[str, Any], what: str) -> tuple[int, int]:
    """The (major, minor) a message says it is written in, 1.0 if it says none; a major other
    than this reader's is :class:`FormatError`.

    >>> check_format({}, "model"), check_format({"format": "1.7"}, "model")
    ((1, 0), (1, 7))
    >>> check_format({"format": 1.0}, "update")
    Traceback (most recent call last):
    ...
    broker.model_codec.FormatError: update field 'format' must be a string "MAJOR.MINOR", ...
    """
    value = obj.get("format", "1.0")
    found = _FORMAT.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise FormatError(f"{what} field 'format' must be a string \"MAJOR.MINOR\", not "
                          f"{value!r:.40}")
    major, minor = int(found.group(1)), int(found.group(2))
    mine = int(FORMAT.split(".")[0])
    if major > mine:
        raise FormatError(f"{what} format {value} is newer than this reader's {mine}.x: "
                          f"upgrade fleetlearn to read it")
    if major < mine:
        raise FormatError(f"{what} format {value} is older than this reader's {mine}.x")
    return major, minor


def _scaler_from(obj: dict[str, Any], what: str, size: int) -> Scaler:
    sub = as_object(get_field(obj, "scaler", what), f"{what} field 'scaler'")
    where = f"{what} scaler"
    scaler = Scaler(get_integer(sub, "count", where), get_vector(sub, "mean", where, size),
                    get_vector(sub, "m2", where, size))
    if np.any(scaler.m2 < 0):
        raise SchemaError(f"{where} has a negative M2")
    return scaler


def _scaler_to(scaler: Scaler) -> dict[str, Any]:
    return {"count": scaler.count, "mean": scaler.mean, "m2": scaler.m2}


def _kind(obj: dict[str, Any], what: str) -> str:
    kind = get_field(obj, "kind", what)
    if kind not in KINDS:
        raise SchemaError(f"{what} field 'kind' must be one of {KINDS}")
    return kind


def _local_time_to(local_time: dict[str, Any]) -> dict[str, Any]:
    return {"local_time": local_time} if local_time else {}


def _local_time_from(obj: dict[str, Any], what: str) -> dict[str, Any]:
    """The optional ``local_time`` member: {"default": zone, "zones": {name: zone}}, every
    zone one this system can read (:mod:`broker.zones`)."""
    if "local_time" not in obj:
        return {}
    local = as_object(obj["local_time"], f"{what} field 'local_time'")
    default, zones = local.get("default", "UTC"), local.get("zones", {})
    if (not isinstance(default, str) or not isinstance(zones, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in zones.items())
            or set(local) - {"default", "zones"}):
        raise SchemaError(f"{what} field 'local_time' must be {{'default': zone, 'zones': "
                          f"{{name: zone}}}}")
    try:
        for zone in (default, *zones.values()):
            check_zone(zone)
    except ValueError as exc:
        raise SchemaError(f"{what} field 'local_time': {exc}") from None
    return {"default": default, "zones": dict(zones)}


def _params_from(obj: dict[str, Any], what: str) -> LinearParams:
    features = get_names(obj, "features", what)
    return LinearParams(
        features=features,
        weights=get_vector(obj, "weights", what, len(features)),
        intercept=get_number(obj, "intercept", what),
    )


def _params_to(params: LinearParams) -> dict[str, Any]:
    return {"features": list(params.features), "weights": params.weights,
            "intercept": params.intercept}


def encode_update(update: Update) -> bytes:
    """An update as a JSON object, its parameters and moments inline."""
    return orjson.dumps(
        {"format": FORMAT, "learner": update.learner, "seq": update.seq,
         "base_version": update.base_version, "n": update.n, "target": update.target,
         "kind": update.kind, "ts": update.ts,
         **_params_to(update.params), "scaler": _scaler_to(update.scaler),
         "metrics": update.metrics, "drift": update.drift,
         **_local_time_to(update.local_time)},
        option=NUMPY,
    )


def decode_update(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Update:
    """Decode an update; its ``n`` may be any integer (the aggregator judges counts)."""
    obj = as_object(load_json(payload, max_bytes), "update")
    check_format(obj, "update")
    metrics = as_object(obj.get("metrics", {}), "update field 'metrics'")
    params = _params_from(obj, "update")
    return Update(
        learner=get_ident(obj, "learner", "update"),
        seq=get_integer(obj, "seq", "update"),
        base_version=get_integer(obj, "base_version", "update"),
        n=get_integer(obj, "n", "update", minimum=-(2**63)),
        target=get_name(obj, "target", "update"),
        params=params,
        ts=get_number(obj, "ts", "update"),
        scaler=_scaler_from(obj, "update", len(params.features) + 1),
        kind=_kind(obj, "update"),
        metrics={k: float(v) for k, v in metrics.items()
                 if is_number(v) and math.isfinite(v)},
        drift=get_integer(obj, "drift", "update") if "drift" in obj else 0,
        local_time=_local_time_from(obj, "update"),
    )


def encode_model(model: Model) -> bytes:
    """A model version as a JSON object, its parameters and moments inline."""
    return orjson.dumps(
        {"format": FORMAT, "version": model.version, "ts": model.ts, "n": model.n,
         "contributors": list(model.contributors), "target": model.target,
         "kind": model.kind, **_params_to(model.params), "scaler": _scaler_to(model.scaler),
         "notes": model.notes, **_local_time_to(model.local_time)},
        option=NUMPY,
    )


def decode_model(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> Model:
    """Decode a model version (its version at least 1, its contributors a list of ids)."""
    obj = as_object(load_json(payload, max_bytes), "model")
    check_format(obj, "model")
    contributors = get_field(obj, "contributors", "model")
    if not isinstance(contributors, list) or not all(isinstance(c, str) for c in contributors):
        raise SchemaError("model field 'contributors' must be a list of ids")
    params = _params_from(obj, "model")
    return Model(
        version=get_integer(obj, "version", "model", minimum=1),
        ts=get_number(obj, "ts", "model"),
        n=get_integer(obj, "n", "model"),
        contributors=tuple(contributors),
        target=get_name(obj, "target", "model"),
        params=params,
        scaler=_scaler_from(obj, "model", len(params.features) + 1),
        kind=_kind(obj, "model"),
        notes=as_object(obj.get("notes", {}), "model field 'notes'"),
        local_time=_local_time_from(obj, "model"),
    )
