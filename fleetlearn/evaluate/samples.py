"""A replay's readings as the gateways would learn them: through the gateway's own
:class:`~gateway.pipeline.ReadingPipeline` (sequence marks, cleaning, features), in time order,
each reading judged at its own timestamp (offline there is no wall clock to lag behind).

Every strategy is fed these same samples; ``scored`` leaves out each device's first admitted
reading, where persistence has nothing to predict from (and a blank learner cannot guess).

>>> from broker.messages import Reading
>>> from gateway.features import FeatureSpec
>>> readings = [Reading("d1", i, float(i), {"a": float(i), "y": 2.0 * i}) for i in range(3)]
>>> s = clean_samples(readings, "s0", FeatureSpec(("a",), "y"), CleaningConfig())
>>> s.X[:, 0].tolist(), s.y.tolist(), s.devices, s.device.tolist(), s.scored.tolist()
([0.0, 1.0, 2.0], [0.0, 2.0, 4.0], ('d1',), [0, 0, 0], [False, True, True])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from broker.messages import Reading
from broker.reading_codec import encode_reading
from gateway.cleaning import CleaningConfig
from gateway.features import FeatureSpec
from gateway.outcomes import ADMITTED
from gateway.pipeline import ReadingPipeline

#: Readings judged per block, as a gateway's largest block.
BLOCK = 4096


@dataclass(frozen=True)
class Samples:
    """The admitted readings in arrival order."""

    X: np.ndarray
    y: np.ndarray
    device: np.ndarray  # per sample: its index in ``devices``
    devices: tuple[str, ...]
    scored: np.ndarray  # per sample: not its device's first (every strategy predicts it)
    rejected: Counter[str]  # readings not admitted, by reason

    def __len__(self) -> int:
        return len(self.y)


def clean_samples(readings: Sequence[Reading], site: str, spec: FeatureSpec,
                  cleaning: CleaningConfig, kind: str = "regression") -> Samples:
    """The readings through one pipeline (its state is per device, so one pipeline cleans as
    one per gateway would)."""
    pipeline = ReadingPipeline(spec, replace(cleaning, binary_target=kind == "binary"))
    Xs, ys, rows = [], [], []
    for start in range(0, len(readings), BLOCK):
        for r in readings[start:start + BLOCK]:
            pipeline.take(r.device, encode_reading(r), r.ts, site)
        block = pipeline.flush()
        if block.rows is None:
            continue
        ok = block.rows.code == ADMITTED
        Xs.append(block.rows.X[ok])
        ys.append(block.rows.Y[ok])
        rows.append(block.rows.dev[ok])
    names = list(pipeline.devices_table.names)
    dev = np.concatenate(rows) if rows else np.empty(0, np.int64)
    firsts = np.unique(dev, return_index=True)[1]
    used = dev[np.sort(firsts)].tolist()  # in order of their first admitted reading
    index = {d: i for i, d in enumerate(used)}
    device = np.array([index[d] for d in dev.tolist()], dtype=np.int64)
    scored = np.ones(len(device), bool)
    if len(device):
        scored[np.unique(device, return_index=True)[1]] = False
    return Samples(np.concatenate(Xs) if Xs else np.empty((0, len(spec.features))),
                   np.concatenate(ys) if ys else np.empty(0), device,
                   tuple(names[d] for d in used), scored, Counter(pipeline.accounting.rejected))
