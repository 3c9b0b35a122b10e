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


def test_progress_kept_past_a_refused_update_is_no_weight_on_a_feature_that_never_varied():
    """The learner sends, learns the first rain, sends again (refused: the round had closed),
    learns dry readings, then adopts the model of its first update. The refused update took
    the rain's moments with it, so the adopted moments say rain never varied; the progress
    since the last send is still added, and with it a weight on rain (its raw value drifts as
    rain's sd shrinks with every dry reading). Held as a standardised weight under the stand-in
    sd of 1, that weight was multiplied by 1 / (the tiny sd of one wet reading among hundreds
    of dry ones) at the next rain: measured over seeds 0-3, errors of 21,896-99,370 on the
    second wet reading (3-377 with the fix, as a learner that saw the rain first itself)."""
    rng = np.random.default_rng(0)
    fed = Federation(FederationConfig(quorum=1))  # sync rounds: an update must be on the newest
    local = LocalLearner(LinearModel(FEATURES))

    local.learn(*readings(rng, 150))
    assert fed.offer(local.update("gw-0", 1, "y", 0.0), "gw-0", now=0.0) is None
    model = fed.step(now=0.0, ts=0.0)  # v1: 150 dry readings
    local.learn(*readings(rng, 100, rain={50: 0.02}))  # learned before v1 arrived
    refusal = fed.offer(local.update("gw-0", 2, "y", 0.0), "gw-0", now=0.0)
    assert refusal is not None and refusal.reason == "stale"
    local.learn(*readings(rng, 100))
    assert local.adopt(model)
    assert model.scaler.m2[1] == 0.0  # rain never varied in the moments now held
    assert local.learner.state.theta[1] == 0.0  # as for a learner that only saw them

    X, y = readings(rng, 30, rain={0: 0.05, 10: 0.3, 20: 0.1})
    errors = np.abs(local.learn(X, y) - y)
    assert errors.max() < 1_000.0  # without the fix: 24,377 at the second wet reading


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
