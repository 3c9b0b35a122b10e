"""A model message as an object that predicts: :class:`Model`.

The message carries raw-unit weights, so a prediction is ``link(intercept + weights · x)``
(:mod:`learners.link`: the sigmoid for a ``binary`` model). ``x`` is built as the gateway
builds it (:class:`gateway.features.FeatureBuilder`, the same code): time features from
``ts`` in the model's local time (its ``local_time`` member), ``lag1_<channel>`` from the
device's previous call, ``site_<site>`` and ``device_<device>`` one-hot.

>>> import numpy as np
>>> from broker.messages import LinearParams, Model as Message, Scaler
>>> from broker.model_codec import encode_model
>>> params = LinearParams(("temp", "hour_cos"), np.array([2.0, 10.0]), 1.0)
>>> scaler = Scaler(4, np.array([20.0, 0.0, 41.0]), np.array([8.0, 2.0, 32.0]))
>>> payload = encode_model(Message(7, 0.0, 4, ("gw-0",), "humid", params, scaler))
>>> model = Model.from_message(payload)
>>> model.version, model.features, model.channels
(7, ('temp', 'hour_cos'), ('temp',))
>>> model.predict_one({"temp": 20.0}, ts=0.0)          # midnight UTC: hour_cos = 1
51.0
>>> model.predict_one({}, ts=0.0)
Traceback (most recent call last):
...
fleetlearn.api.inputs.MissingInput: missing input: channel 'temp' (pass it in x, or predict \
with fill='last' or 'mean')
>>> Model.from_message(payload, fill="mean").predict_one({}, ts=0.0)   # the fleet's mean temp
51.0
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from broker.keyring import Keyring, SignatureRefused
from broker.messages import Model as Message
from broker.model_codec import decode_model
from broker.wire import MAX_PAYLOAD_BYTES, DecodeError
from fleetlearn.api.inputs import DEFAULT_FILL, FILLS, MissingInput, Needs, absent, seconds
from gateway.features import LAG, FeatureBuilder
from gateway.local_time import LocalTime
from gateway.validation import Rejected
from learners.imbalance import decision_threshold
from learners.link import output
from learners.model_admission import ModelAdmission, ModelBounds
from learners.personal_book import PersonalBook


class ModelRefused(ValueError):
    """A model message not taken: badly signed, malformed or out of range (``reason``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def open_message(payload: bytes, keys: Keyring | None = None,
                 max_bytes: int = MAX_PAYLOAD_BYTES) -> Message:
    """Verify (with a trust file in ``keys``: an aggregator's signature), decode and check
    the numbers of a model message, as a predictor does; :class:`ModelRefused` if not."""
    try:
        body, _ = (keys or Keyring()).check(payload, "model", "aggregator")
        message = decode_model(body, max_bytes)
    except (DecodeError, SignatureRefused) as exc:
        raise ModelRefused(f"model_{exc.reason}", str(exc)) from None
    refused = ModelAdmission(ModelBounds()).judge(message)
    if refused is not None:
        raise ModelRefused(*refused)
    return message


class Model:
    """One model version, ready to predict one reading at a time."""

    def __init__(self, message: Message, fill: str = DEFAULT_FILL) -> None:
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
        self.message, self.fill = message, fill
        #: Personal parts (:mod:`learners.personal_book`; :func:`~fleetlearn.api.follow.follow`
        #: keeps them): with one for the ``site``/``device`` asked, the prediction is its mix.
        self.personal: PersonalBook | None = None
        self.needs = Needs(message.params.features, message.target,
                           LocalTime(**message.local_time) if message.local_time else None)
        self._build = FeatureBuilder(self.needs.spec)
        self._last: dict[str, dict[str, float]] = {}  # device -> channel -> last value given
        self._means = {}
        for i, f in enumerate(message.params.features):  # the fleet's means, by channel
            self._means.setdefault(f[len(LAG):] if f.startswith(LAG) else f,
                                   float(message.scaler.mean[i]))

    @classmethod
    def from_message(cls, payload: bytes, trust: str | Path | None = None,
                     fill: str = DEFAULT_FILL) -> Model:
        """The model in a message from ``{prefix}/learn/model``. With ``trust`` (a trust file,
        ``fleetlearn keys``) only a model an aggregator signed is taken; :class:`ModelRefused`
        otherwise, and for a malformed one. ``fill``: see :meth:`predict_one`."""
        keys = Keyring(trust_file=Path(trust)) if trust is not None else None
        return cls(open_message(payload, keys), fill)

    def successor(self, message: Message) -> Model:
        """A newer version of the same task, keeping this one's per-device memory (lags and
        last values): a prediction after the swap sees the same history."""
        if (message.params.features, message.target, message.local_time) != (
                self.features, self.target, self.message.local_time):
            raise ValueError("a successor must have the same features, target and local time")
        model = Model(message, self.fill)
        model._build, model._last, model.personal = self._build, self._last, self.personal
        return model

    version = property(lambda self: self.message.version)
    target = property(lambda self: self.message.target)
    kind = property(lambda self: self.message.kind)
    features = property(lambda self: self.message.params.features)

    @property
    def threshold(self) -> float:
        """A binary model's decision threshold: the fleet's, as its notes announce it (the
        gateways' tuned or given ones, their median), else 0.5. ``predict_one(x) >=
        model.threshold`` says 1, as the predictor's ``decision`` does."""
        return decision_threshold(self.message.notes)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels ``x`` should hold (the derived features come from the context)."""
        return self.needs.channels

    def __repr__(self) -> str:
        return (f"Model(v{self.version}, {self.kind} of {self.target!r} on "
                f"{list(self.features)})")

    def predict_one(self, x: dict[str, float], ts: float | datetime | None = None,
                    device: str | None = None, site: str | None = None) -> float:
        """The prediction for one reading's channels ``x`` (a probability for a binary model).

        ``ts`` (UNIX seconds, or a datetime: naive is UTC) feeds ``hour_*``/``doy_*``;
        ``device`` keeps its previous reading for ``lag1_*`` (the first call for a device has
        none: :class:`MissingInput`); ``site`` sets ``site_*``. A channel absent from ``x`` (or
        None, NaN) is, as ``fill`` says: ``none``, named in :class:`MissingInput`; ``last``, the
        device's last value given here (as the gateway imputes), else the fleet's mean from
        the model's moments; ``mean``, the fleet's mean."""
        missing_context = self.needs.context(ts, device, site)
        last = self._last.setdefault(device, {}) if device is not None else {}
        values, missing = {}, []
        for channel in self.needs.channels:
            value = x.get(channel)
            if absent(value):
                value = self._filled(channel, last)
                if value is None:
                    missing.append(channel)
                    continue
            else:
                last[channel] = value = float(value)
            values[channel] = value
        if missing or missing_context:
            raise MissingInput(missing, missing_context)
        target = x.get(self.target)
        values[self.target] = math.nan if absent(target) else float(target)
        try:
            vector, _ = self._build(values, seconds(ts) if ts is not None else 0.0,
                                    device or "", site or "")
        except Rejected as exc:  # no_history: a lag before the device's first reading
            raise MissingInput([], [f"{exc.detail} (predict one of its readings first)"]
                               ) from None
        nan = [f for f, v in zip(self.features, vector, strict=True) if math.isnan(v)]
        if nan:
            raise MissingInput([], [f"{', '.join(nan)}: the device's previous reading did not "
                                    f"have {', '.join(f[len(LAG):] for f in nan)}"])
        params = self.message.params
        if self.personal is not None:
            params = self.personal.params(params, site, device)
        return output(self.kind, float(vector @ params.weights + params.intercept))

    def _filled(self, channel: str, last: dict[str, float]) -> float | None:
        if self.fill == "last" and channel in last:
            return last[channel]
        return self._means.get(channel) if self.fill != "none" else None
