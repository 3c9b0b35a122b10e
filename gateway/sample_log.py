"""What a gateway learned, sample by sample, kept for the baselines `up` reports.

`up --report` compares the fleet's model with persistence, each gateway alone and one central
learner *on the same readings* (:mod:`fleetlearn.deploy.baselines`). For that each gateway
keeps, in the order it learned them, every admitted sample's features, target, device, clock,
the global model's prediction before learning it (NaN for its first: a blank learner's) and,
with personal parts, the personalised one (NaN without), up to ``limit`` samples; at its stop
it writes them to one ``.npz`` file (written whole, then renamed).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "gw-0.npz"
>>> log = SampleLog(path, ("a", "b"), limit=3)
>>> log.add(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0]),
...         np.array([np.nan, 5.5]), ["d1", "d2"], np.array([10.0, 11.0]))
>>> log.add(np.array([[7.0, 8.0], [9.0, 0.0]]), np.array([7.0, 8.0]),
...         np.array([6.0, 7.5]), ["d1", "d1"], np.array([12.0, 13.0]))
>>> log.save()
>>> kept = load(path)
>>> kept.y.tolist(), kept.device.tolist(), kept.features, kept.dropped, kept.personal[:1]
([5.0, 6.0, 7.0], ['d1', 'd2', 'd1'], ('a', 'b'), 1, array([nan]))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gateway.outcomes import ADMITTED

#: Samples a gateway keeps for the baselines by default: ~20 MB with ten features.
LIMIT = 200_000


@dataclass(frozen=True)
class Samples:
    """One gateway's learned samples, in the order it learned them."""

    features: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    predicted: np.ndarray  # the global model's prediction before learning (NaN: none)
    personal: np.ndarray  # the personalised prediction (NaN: none)
    device: np.ndarray  # device ids (str)
    ts: np.ndarray  # the readings' own clocks
    dropped: int  # learned after the limit was reached: not kept


class SampleLog:
    """Keeps samples in chunks until ``limit``; counts the rest as dropped."""

    def __init__(self, path: Path, features: tuple[str, ...], limit: int = LIMIT) -> None:
        self.path = Path(path)
        self.features = tuple(features)
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self._chunks: list[tuple[np.ndarray, ...]] = []

    def add(self, X: np.ndarray, y: np.ndarray, predicted: np.ndarray, devices: list[str],
            ts: np.ndarray, personal: np.ndarray | None = None) -> None:
        """Keep a block's samples (as many as the limit leaves room for)."""
        room = max(self.limit - self.kept, 0)
        take = min(room, len(y))
        self.dropped += len(y) - take
        if take:
            guess = predicted[:take].astype(float)  # copies
            mixed = np.full(take, np.nan) if personal is None else personal[:take].astype(float)
            if not self.kept:  # the gateway's first sample: a blank learner's is no guess
                guess[0] = mixed[0] = np.nan
            self._chunks.append((X[:take].copy(), y[:take].copy(), guess,
                                 np.asarray(devices[:take], dtype=str), ts[:take].copy(), mixed))
            self.kept += take

    def add_block(self, block: Any, predicted: np.ndarray, personal: np.ndarray | None,
                  names: list[str]) -> None:
        """Keep the admitted samples of a judged :class:`~gateway.pipeline.Block`; ``names``:
        the device ids by row of the pipeline's device table."""
        ok = block.rows.code == ADMITTED
        self.add(block.X, block.y, predicted, [names[r] for r in block.rows.dev[ok].tolist()],
                 block.rows.ts[ok], personal)

    def save(self) -> None:
        """Write what was kept (an empty file when nothing was)."""
        width = len(self.features)
        parts = list(zip(*self._chunks, strict=True)) if self._chunks else [
            [np.empty((0, width))], [np.empty(0)], [np.empty(0)], [np.empty(0, str)],
            [np.empty(0)], [np.empty(0)]]
        X, y, predicted, device, ts, personal = (np.concatenate(p) for p in parts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(self.path.name + ".part")
        with open(part, "wb") as out:
            np.savez(out, X=X, y=y, predicted=predicted, personal=personal, device=device, ts=ts,
                     features=np.asarray(self.features, dtype=str),
                     dropped=np.asarray(self.dropped))
        os.replace(part, self.path)


def load(path: Path) -> Samples:
    """The samples a gateway saved."""
    with np.load(path, allow_pickle=False) as f:
        return Samples(tuple(f["features"].tolist()), f["X"], f["y"], f["predicted"],
                       f["personal"], f["device"], f["ts"], int(f["dropped"]))
