"""The fault injector's ground truth, checked against the gateway's pipeline without a broker."""

import time
from collections import Counter

import numpy as np
import orjson
import pytest

from devices.faults import EXTRA_FAULTS, FAULTS, FaultInjector, FaultRates
from devices.simulator import FleetSimulator
from gateway.features import FeatureSpec
from gateway.pipeline import Admitted, CleaningConfig, ReadingPipeline


def run(rates: str, n: int = 6000, seed: int = 0, now: float | None = None):
    sim = FleetSimulator(10, 2, seed=seed)
    inj = FaultInjector(sim, FaultRates.parse(rates), seed=seed)
    allow = frozenset(d.device for d in sim.devices)
    pipe = ReadingPipeline(FeatureSpec(sim.truth.features, sim.truth.target),
                           CleaningConfig(allowlist=allow))
    now = time.time() if now is None else now
    messages = [m for i in range(n) for m in inj.next(i % 10, now)] + inj.drain()
    seen: Counter[str] = Counter()
    for m in messages:
        for outcome in pipe.admit(m.device, m.payload, now):
            seen["admitted" if isinstance(outcome, Admitted) else outcome.reason] += 1
    pipe.close()
    return inj, pipe, seen, messages


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_ends_exactly_as_the_log_says(fault):
    # an old boot's message needs a restart before it
    inj, pipe, seen, _ = run(f"{fault}=0.2" + (",restart=0.02" * (fault == "old_boot")), n=2000)
    assert inj.injected[fault] > 0
    assert seen == inj.expected
    assert pipe.gaps == inj.expected_gaps()


def test_all_faults_together_end_exactly_as_the_log_says():
    inj, pipe, seen, messages = run("all=0.05")
    assert set(inj.injected) == set(FAULTS)
    assert seen == inj.expected and sum(seen.values()) == len(messages)
    # a loss after a device's last sent number can never be found: it is not a gap
    assert pipe.gaps == inj.expected_gaps() > 0 and inj.lost() >= inj.expected_gaps()


def test_extras_leave_the_numbered_stream_whole():
    _inj, pipe, seen, _ = run(",".join(f"{f}=0.3" for f in EXTRA_FAULTS), n=1000)
    assert seen["admitted"] == 1000 and pipe.gaps == 0


def test_the_same_seed_gives_the_same_faults():
    now = time.time()
    a, b = run("all=0.1", n=500, now=now)[3], run("all=0.1", n=500, now=now)[3]
    assert [m.payload for m in a] == [m.payload for m in b]


@pytest.mark.parametrize("text", ["spike=2", "bogus=0.1", "spike", "spike=x"])
def test_bad_fault_specs_are_refused(text):
    with pytest.raises(ValueError):
        FaultRates.parse(text)


def test_drift_changes_the_truth_the_target_follows():
    sim = FleetSimulator(4, 1, seed=2)
    before = sim.truth
    sim.drift_to(before.drifted(2))
    residuals = []
    for i in range(2000):
        r = sim.reading(i % 4, 0.0)
        residuals.append(r.values["power"] - sim.truth.value(r.values))
    assert sim.truth != before and abs(np.std(residuals) - sim.truth.noise_sd) < 0.05


def test_a_device_restart_is_learned_at_once_and_its_gaps_stay_exact():
    """A device restarts from 0 with a new boot id mid-stream, with losses before and after:
    every reading after the restart is learned (none refused as replay), the old boot's
    losses are gaps, and an old boot's message is refused as old_boot."""
    inj, pipe, seen, messages = run("restart=0.01,lost=0.05,old_boot=0.02,reorder=0.05", n=6000)
    assert inj.injected["restart"] >= 20 and inj.injected["old_boot"] > 0
    assert pipe.restarts == inj.injected["restart"]
    assert seen == inj.expected and set(seen) == {"admitted", "old_boot"}
    assert pipe.gaps == inj.expected_gaps() > 0
    boots = [orjson.loads(m.payload).get("boot", 0) for m in messages if m.expect == "admitted"
             and orjson.loads(m.payload)["device"] == "s0-d0000"]
    assert boots == sorted(boots) and len(set(boots)) > 1  # numbered anew under larger boots
