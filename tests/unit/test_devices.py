"""The simulated fleet: seeded, and its target follows the hidden ground truth."""

import numpy as np
import pytest

from devices.simulator import FleetSimulator
from devices.truth import GroundTruth, weight_error


def test_same_seed_same_stream():
    a, b = FleetSimulator(5, 2, seed=3), FleetSimulator(5, 2, seed=3)
    assert [a.reading(i % 5, 0.0) for i in range(50)] == [b.reading(i % 5, 0.0)
                                                          for i in range(50)]
    assert FleetSimulator(5, 2, seed=4).reading(0, 0.0) != FleetSimulator(5, 2, seed=3).reading(
        0, 0.0)


def test_target_is_the_truth_plus_noise_of_the_stated_size():
    sim = FleetSimulator(10, 2, seed=1)
    residuals = []
    for i in range(5000):
        r = sim.reading(i % 10, 0.0)
        residuals.append(r.values["power"] - sim.truth.value(r.values))
    assert abs(np.mean(residuals)) < 0.05
    assert abs(np.std(residuals) - sim.truth.noise_sd) < 0.05


def test_sequence_numbers_count_up_per_device():
    sim = FleetSimulator(3, 1, seed=0)
    seqs = [sim.reading(1, 0.0).seq for _ in range(4)]
    assert seqs == [0, 1, 2, 3] and sim.published == 4


def test_truth_is_seeded_and_weight_error_is_relative():
    t = GroundTruth.from_seed(5)
    assert t == GroundTruth.from_seed(5) and t != GroundTruth.from_seed(6)
    w = t.weight_vector(t.features)
    assert weight_error(w, t, t.features) == 0.0
    assert weight_error(w * 1.1, t, t.features) == pytest.approx(0.1)

