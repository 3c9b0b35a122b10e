"""Concept drift end to end: the simulated fleet's truth changes mid-run; a gateway's detector
flags it, the aggregator reacts, and the federated model comes back to the new truth."""

import tempfile
from pathlib import Path

import pytest

from fleetlearn.bench.drift import run_policy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_the_model_comes_back_within_ten_percent_of_the_new_truth():
    runs = set(Path(tempfile.gettempdir()).glob("fleetlearn-drift-rescale-*"))
    row = run_policy("rescale", drift_at=6.0, duration=22.0)
    # the benchmark's deployment logs go with it (before, every run left one in /tmp)
    assert set(Path(tempfile.gettempdir()).glob("fleetlearn-drift-rescale-*")) <= runs
    assert row["reactions"] >= 1  # a learner flagged it, and the model says what was done
    # it comes back within 10 % of the new truth (whether it then *stays* within is measured
    # by `fleetlearn bench --scenario drift`: at the default step the weights jitter by a few
    # per cent, and one wobble past 10 % on a loaded machine is not a failed drift reaction)
    assert row["first_within_s"] is not None and row["final_weight_error"] < 0.10
