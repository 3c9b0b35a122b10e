"""Adopting a merged model while keeping local progress, in sequences that timing produces.

The weather replay under CPU load (tests/integration/test_weather.py) once gave a federated
prequential R² of 0.68 instead of 0.97: a few predictions hundreds of units off, on rare
readings (the first rain, the first fog) at every gateway. Both ways an adoption armed such a
weight are replayed here with the aggregator's own decisions (:class:`Federation`, sync rounds)
and no broker. The stream: y = 60 + 15 x + 40 rain + noise, dry (rain 0) but where a test says.
"""

import numpy as np
import pytest

from learners.federation import Federation, FederationConfig
from learners.linear import LinearModel
from learners.local import LocalLearner

pytestmark = pytest.mark.timeout(60)

FEATURES = ("x", "rain")


def readings(rng: np.random.Generator, n: int, rain: dict[int, float] | None = None):
    """n readings; reading i has ``rain[i]`` mm of rain (0 elsewhere)."""
    X = np.column_stack([rng.normal(0.0, 1.0, n), np.zeros(n)])
    for i, mm in (rain or {}).items():
        X[i, 1] = mm
    return X, 60.0 + 15.0 * X[:, 0] + 40.0 * X[:, 1] + rng.normal(0.0, 3.0, n)


def test_a_refused_update_keeps_its_samples_through_the_adoption():
    """The learner sends, learns the first rain, sends again (refused: the round had closed),
    learns dry readings, then adopts the model of its first update. Adoption used to assume the
    model held the *last* update sent: the refused update's 100 samples, and the rain's
    moments with them, were lost; the adopted moments said rain never varied, and a weight
    armed under that scaling was multiplied by 1 / (the tiny sd of one wet reading among
    hundreds of dry ones) at the next rain (errors of 21,896-99,370 over seeds 0-3). The model
    now says which update of each learner it merged (``notes["seqs"]``), so the learner keeps
    everything after it: the moments of all 350 readings, and its next update brings the 200
    the model lacks to the fleet."""
    rng = np.random.default_rng(0)
    fed = Federation(FederationConfig(quorum=1))  # sync rounds: an update must be on the newest
    local = LocalLearner(LinearModel(FEATURES))

    local.learn(*readings(rng, 150))
    assert fed.offer(local.update("gw-0", 1, "y", 0.0), "gw-0", now=0.0) is None
    model = fed.step(now=0.0, ts=0.0)  # v1: 150 dry readings
    assert model.notes["seqs"] == {"gw-0": 1}
    local.learn(*readings(rng, 100, rain={50: 0.02}))  # learned before v1 arrived
    refusal = fed.offer(local.update("gw-0", 2, "y", 0.0), "gw-0", now=0.0)
    assert refusal is not None and refusal.reason == "stale"
    local.learn(*readings(rng, 100))
    assert local.adopt(model)
    held = local.learner.scaler()
    assert held.count == 350 and held.m2[1] > 0.0  # the rain is still in its moments
    assert local.since_base == 200

    assert fed.offer(local.update("gw-0", 3, "y", 0.0), "gw-0", now=0.0) is None
    v2 = fed.step(now=0.0, ts=0.0)
    assert v2.scaler.count == 350 and v2.scaler.m2[1] > 0.0  # before: 250, and 0.0
    X, y = readings(rng, 30, rain={0: 0.05, 10: 0.3, 20: 0.1})
    assert local.adopt(v2)
    errors = np.abs(local.learn(X, y) - y)
    assert errors.max() < 1_000.0  # a learner that saw the rain itself: 3-377 (seeds 0-3)


def test_a_feature_constant_here_but_not_in_the_fleet_does_not_run_away():
    """A gateway that never saw rain adopts a model whose moments did (another gateway's). Its
    own dry readings sit a little off the fleet's mean rain, so the rain coordinate acts as a
    second intercept; with no step memory there, AdaGrad took full steps on it whenever the
    errors leant one way, and the raw weight (those steps / rain's small sd) ran away."""
    rng = np.random.default_rng(0)
    fed = Federation(FederationConfig(quorum=2))
    wet, dry = LocalLearner(LinearModel(FEATURES)), LocalLearner(LinearModel(FEATURES))
    wet.learn(*readings(rng, 100, rain={5: 2.0, 40: 1.5, 77: 2.5}))
    dry.learn(*readings(rng, 100))
    for seq, (name, local) in enumerate((("gw-0", wet), ("gw-1", dry)), 1):
        assert fed.offer(local.update(name, seq, "y", 0.0), name, now=0.0) is None
    assert dry.adopt(fed.step(now=0.0, ts=0.0))

    X, y = readings(rng, 150)
    dry.learn(X, y + 3.0)  # a humid spell: errors of one sign for a while
    rain_weight = dry.learner.to_params().weights[1]
    X, y = readings(rng, 1, rain={0: 2.0})
    error = abs(dry.learn(X, y)[0] - y[0])
    assert rain_weight > 0.0 and error < 40.0  # fixed: 25.7 and 27.3; before: -35.0 and 148.7
