"""The predictor's pure core: the gateway's own pipeline, predicting instead of learning.

Readings go through :class:`~gateway.pipeline.ReadingPipeline`, the very stage a gateway learns
from (sequence marks, clock window, cleaning, features: one compiled call per block), with the
task's cleaning settings; so the predictor sees every reading as the gateway saw it (smoothed,
imputed, outliers replaced, lags of cleaned values). Each admitted reading is then predicted in
one matrix product per block, and the predictions are grouped per message they came in: one
reading in, one prediction out; a batch in, one columnar batch out (:func:`batch_payload`).

A reading the gateway would not learn from (refused, or without its target, or without the
history its lag features need) is not predicted either: its features are not the gateway's.

>>> from broker.messages import LinearParams, Model, Scaler
>>> from gateway.cleaning import ChannelPolicy, CleaningConfig
>>> from gateway.features import FeatureSpec
>>> serving = Serving(FeatureSpec(("a",), "y"), CleaningConfig(policy=ChannelPolicy(smooth=0.5)))
>>> model = Model(1, 0.0, 1, (), "y", LinearParams(("a",), np.array([1.0]), 0.0),
...               Scaler.empty(2))
>>> for seq, a in enumerate([5.0, 1.0]):
...     _ = serving.take("d", b'{"device":"d","seq":%d,"ts":9.0,"values":{"a":%g,"y":0}}'
...                      % (seq, a), 9.0, "s0", ("s0", "d"))
>>> [(s.seq, s.prediction) for s in serving.flush(model)]   # 1.0 smoothed: 0.5*1 + 0.5*5
[([0], [5.0]), ([1], [3.0])]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from broker.messages import LinearParams, Model
from gateway.cleaning import CleaningConfig
from gateway.features import FeatureSpec
from gateway.outcomes import ADMITTED
from gateway.pipeline import ReadingPipeline

_BATCH = re.compile(rb'^\s*\[|"seq"\s*:\s*\[')


@dataclass
class Served:
    """One incoming message's predictions (its admitted readings, in order)."""

    ref: Any  # what :meth:`Serving.take` was given as ``ref``
    batch: bool  # the message held a batch (rows or columns): answer with a columnar batch
    seq: list[int]
    ts: list[float]
    prediction: list[float]
    actual: list[float]  # the target as the gateway learns it (cleaned)
    features: np.ndarray  # (readings, features): what each prediction was made from


def outputs(kind: str, scores: np.ndarray) -> np.ndarray:
    """The model's predictions from raw-unit linear scores (the link of
    :func:`learners.link.output`, on an array).

    >>> outputs("binary", np.array([0.0])).tolist(), outputs("regression", np.ones(1)).tolist()
    ([0.5], [1.0])
    """
    return 1.0 / (1.0 + np.exp(-scores)) if kind == "binary" else scores


def is_batch(payload: bytes) -> bool:
    """A payload in the rows or the columns layout (not a single reading).

    >>> is_batch(b'[{"seq":1}]'), is_batch(b'{"seq": [1]}'), is_batch(b'{"seq":1}')
    (True, True, False)
    """
    return _BATCH.search(payload) is not None


class Serving:
    """Readings taken per message; judged, cleaned, featured and predicted per block."""

    def __init__(self, spec: FeatureSpec, cleaning: CleaningConfig) -> None:
        self.spec = spec
        self.pipeline = ReadingPipeline(spec, cleaning)
        self.take = self.pipeline.take  # (device, payload, now, site, ref) -> readings

    @property
    def pending(self) -> int:
        return self.pipeline.pending

    def flush(self, model: Model | None,
              personal: Callable[[Any], LinearParams] | None = None) -> list[Served]:
        """Judge every reading taken since the last flush; predict the admitted ones with
        ``model`` (None: judge only, the state moves on as the gateway's does), or with the
        parameters ``personal(ref)`` gives a message's readings (a personal part's mix)."""
        block = self.pipeline.flush()
        rows = block.rows
        if rows is None or model is None:
            return []
        ok = np.flatnonzero(rows.code == ADMITTED)
        if not len(ok):
            return []
        X = rows.X[ok]
        p = model.params
        predictions = outputs(model.kind, X @ p.weights + p.intercept)
        message = np.searchsorted(block.ends, ok, side="right")
        starts = np.flatnonzero(np.diff(message, prepend=-1))
        ends = np.append(starts[1:], len(ok))
        seq, ts, y = rows.seq[ok].tolist(), rows.ts[ok].tolist(), rows.Y[ok].tolist()
        values = predictions.tolist()
        out = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            m = int(message[a])
            if personal is not None:
                mine = personal(block.refs[m])
                if mine is not p:
                    values[a:b] = outputs(model.kind, X[a:b] @ mine.weights
                                          + mine.intercept).tolist()
            out.append(Served(block.refs[m], is_batch(block.payloads[m]), seq[a:b], ts[a:b],
                              values[a:b], y[a:b], X[a:b]))
        return out
