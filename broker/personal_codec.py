"""A personal part on the wire: a gateway's own model of a site (or device) and its mixing
weight (:mod:`learners.personal`), published retained per site so predictors and the API can
serve the personalised prediction ``(1 - alpha) global + alpha own``.

Decoding is as strict as a model's (:mod:`broker.model_codec`): typed errors, ids checked,
vectors as long as the features named, ``alpha`` in [0, 1], the listed devices ids.

>>> import numpy as np
>>> part = PersonalPart("gw-0", "s0", None, ("s0-d1",), 7, 1.0, 50, "y", 0.75,
...                     LinearParams(("a",), np.array([2.0]), 0.5))
>>> back = decode_personal(encode_personal(part))
>>> back.gateway, back.site, back.device, back.devices, back.alpha, back.params.weights.tolist()
('gw-0', 's0', None, ('s0-d1',), 0.75, [2.0])
>>> decode_personal(encode_personal(part).replace(b'"alpha":0.75', b'"alpha":2'))
Traceback (most recent call last):
...
broker.wire.SchemaError: personal part field 'alpha' must be in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from broker.field_checks import get_field, get_ident, get_integer, get_name, get_number
from broker.messages import LinearParams
from broker.model_codec import FORMAT, _params_from, _params_to, check_format
from broker.wire import MAX_PAYLOAD_BYTES, NUMPY, SchemaError, as_object, load_json

WHAT = "personal part"


@dataclass(frozen=True)
class PersonalPart:
    gateway: str  # who learned it
    site: str
    device: str | None  # None: the site's part (for each of ``devices``)
    devices: tuple[str, ...]  # the devices it learned from: whose readings it serves
    seq: int  # goes up with each publication of this gateway
    ts: float
    n: int  # readings learned
    target: str
    alpha: float  # the weight of the own model in the mix
    params: LinearParams  # the own model, raw units


def encode_personal(part: PersonalPart) -> bytes:
    return orjson.dumps(
        {"format": FORMAT, "gateway": part.gateway, "site": part.site, "device": part.device,
         "devices": list(part.devices), "seq": part.seq, "ts": part.ts, "n": part.n,
         "target": part.target, "alpha": part.alpha, **_params_to(part.params)},
        option=NUMPY)


def decode_personal(payload: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> PersonalPart:
    obj = as_object(load_json(payload, max_bytes), WHAT)
    check_format(obj, WHAT)
    devices = get_field(obj, "devices", WHAT)
    if not isinstance(devices, list):
        raise SchemaError(f"{WHAT} field 'devices' must be a list of ids")
    devices = tuple(get_ident({"d": d}, "d", f"{WHAT} devices") for d in devices)
    alpha = get_number(obj, "alpha", WHAT)
    if not 0.0 <= alpha <= 1.0:
        raise SchemaError(f"{WHAT} field 'alpha' must be in [0, 1]")
    device = obj.get("device")
    return PersonalPart(
        gateway=get_ident(obj, "gateway", WHAT), site=get_ident(obj, "site", WHAT),
        device=None if device is None else get_ident(obj, "device", WHAT), devices=devices,
        seq=get_integer(obj, "seq", WHAT), ts=get_number(obj, "ts", WHAT),
        n=get_integer(obj, "n", WHAT), target=get_name(obj, "target", WHAT), alpha=alpha,
        params=_params_from(obj, WHAT))


__all__ = ["PersonalPart", "decode_personal", "encode_personal"]
