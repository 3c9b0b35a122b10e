"""A seeded fleet of simulated sensors whose target channel follows a hidden ground truth.

>>> sim = FleetSimulator(n_devices=4, n_sites=2, seed=1)
>>> [d.device for d in sim.devices]
['s0-d0000', 's1-d0001', 's0-d0002', 's1-d0003']
>>> r = sim.reading(0, ts=1.0)
>>> r.seq, sorted(r.values)
(0, ['humidity', 'power', 'pressure', 'temperature'])
>>> sim.reading(0, ts=2.0).seq
1
>>> sim.restart(0), sim.reading(0, ts=3.0).seq, sim.published  # numbered again, boot 1
(1, 0, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from broker.messages import Reading
from devices.truth import CHANNELS, EVENT, GroundTruth, event_level

#: How many readings one slow cycle of each channel takes (distinct, so channels decorrelate).
PERIODS = {"temperature": 97.0, "humidity": 61.0, "pressure": 37.0}


@dataclass(frozen=True)
class Device:
    site: str
    device: str


class FleetSimulator:
    """N devices over S sites; device i lives on site ``i % S``. Every device starts at boot id
    ``boot`` (a fleet that starts later should give a larger one: its start time in ms). With
    ``heterogeneity`` H > 0 each site has its own truth: the fleet's plus an offset of relative
    size H (:meth:`~devices.truth.GroundTruth.for_site`); :attr:`truth` stays the fleet's.
    With ``positives`` (a share in (0, 1)), every reading also carries a binary channel
    ``event``: 1 when its target is above the level that share of the fleet's readings exceed
    (:func:`devices.truth.event_level`), an imbalanced binary task.

    >>> sim = FleetSimulator(20, seed=3, positives=0.05)
    >>> events = [sim.reading(i % 20, 0.0).values["event"] for i in range(20_000)]
    >>> round(sum(events) / len(events), 2)
    0.05

    >>> from devices.truth import weight_error
    >>> sim = FleetSimulator(4, 2, seed=1, heterogeneity=0.3)
    >>> [round(weight_error(t.weight_vector(t.features), sim.truth, t.features), 3)
    ...  for t in sim.site_truths]
    [0.3, 0.3]
    """

    def __init__(
        self,
        n_devices: int,
        n_sites: int = 1,
        seed: int = 0,
        truth: GroundTruth | None = None,
        boot: int = 0,
        heterogeneity: float = 0.0,
        positives: float | None = None,
    ) -> None:
        if n_devices < 1 or n_sites < 1:
            raise ValueError("a fleet needs at least one device and one site")
        if not heterogeneity >= 0:
            raise ValueError("heterogeneity must be >= 0")
        self.truth = truth or GroundTruth.from_seed(seed)
        self.heterogeneity, self.seed, self.n_sites = heterogeneity, seed, n_sites
        self.devices = [
            Device(site=f"s{i % n_sites}", device=f"s{i % n_sites}-d{i:04d}")
            for i in range(n_devices)
        ]
        rng = np.random.default_rng([seed, 0xD1CE])
        names = list(CHANNELS)
        level, between, within = (np.array([CHANNELS[c][k] for c in names]) for k in range(3))
        self._names = names
        self._levels = level + rng.normal(0.0, 1.0, (n_devices, len(names))) * between
        self._phases = rng.uniform(0.0, 2 * np.pi, (n_devices, len(names)))
        self._swing = within * 0.8
        self._jitter = within * 0.4
        self._omega = 2 * np.pi / np.array([PERIODS[c] for c in names])
        self._rngs = [np.random.default_rng([seed, i]) for i in range(n_devices)]
        self._seq = [0] * n_devices
        self._boots = [boot] * n_devices
        self._generated = 0
        self._set_truth(self.truth)
        self._event: float | None = None
        if positives is not None:  # target sd within a device: swing (a sine), jitter, noise
            weights = self.truth.weight_vector(tuple(names))  # the fleet's
            spread = np.sqrt(self._swing ** 2 / 2 + self._jitter ** 2) * weights
            sd = math.hypot(float(np.linalg.norm(spread)), self.truth.noise_sd)
            means = self.truth.intercept + self._levels @ weights
            self._event = event_level(means, sd, positives)

    def _set_truth(self, truth: GroundTruth) -> None:
        self.truth = truth
        self.site_truths = [truth.for_site(s, self.heterogeneity, self.seed)
                            for s in range(self.n_sites)]
        self._weights = np.array([t.weight_vector(tuple(self._names)) for t in self.site_truths])
        self._intercepts = [t.intercept for t in self.site_truths]

    def reading(self, index: int, ts: float) -> Reading:
        """The next reading of device ``index``, stamped ``ts``."""
        seq = self._seq[index]
        self._seq[index] = seq + 1
        self._generated += 1
        rng = self._rngs[index]
        x = (self._levels[index]
             + self._swing * np.sin(self._omega * seq + self._phases[index])
             + self._jitter * rng.standard_normal(len(self._names)))
        x = np.round(x, 3)
        site = index % self.n_sites
        y = self._intercepts[site] + float(x @ self._weights[site])
        y += self.truth.noise_sd * float(rng.standard_normal())
        values = dict(zip(self._names, x.tolist(), strict=True))
        values[self.truth.target] = round(y, 4)
        if self._event is not None:
            values[EVENT] = float(y > self._event)
        return Reading(device=self.devices[index].device, seq=seq, ts=ts, values=values,
                       boot=self._boots[index])

    def next_seq(self, index: int) -> int:
        """The number device ``index``'s next reading will have."""
        return self._seq[index]

    def restart(self, index: int) -> int:
        """Device ``index`` reboots: it numbers its readings from 0 again, under the next boot
        id, which it returns."""
        self._seq[index] = 0
        self._boots[index] += 1
        return self._boots[index]

    @property
    def swing(self) -> np.ndarray:
        """How far each feature channel moves within a device, in channel order."""
        return self._swing

    def drift_to(self, truth: GroundTruth) -> None:
        """Concept drift: from now on the target follows ``truth``."""
        if truth.features != self.truth.features:
            raise ValueError("a drifted truth must name the same channels")
        self._set_truth(truth)

    @property
    def published(self) -> int:
        """Readings generated so far, over all devices (restarts included)."""
        return self._generated
