"""An imbalanced real task through a real mosquitto: rain at the three NYC airports (7 % of
hours), replayed into three gateways learning with balanced class weights. Their federated
balanced accuracy must beat the unweighted federated model's (measured offline, as
`fleetlearn evaluate` does, on the same readings)."""

import json
import subprocess
import sys

import pytest

from devices.replay_plan import load_readings
from fleetlearn.evaluate.run import evaluate
from fleetlearn.evaluate.settings import EvaluateSettings
from gateway.cleaning import ChannelPolicy, CleaningConfig
from tests.imbalance_data import RAIN, RAIN_COLUMNS, write_rain_csv

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(300)]


def test_balanced_weights_beat_the_unweighted_model_on_rain_under_up(mosquitto, prefix,
                                                                      tmp_path):
    csv = write_rain_csv(tmp_path / "rain.csv")
    config = tmp_path / "rain.toml"
    config.write_text(f"""
[task]
features = {json.dumps(list(RAIN.features))}
target = "rain"
kind = "binary"
[learner]
class_weight = "balanced"
[cleaning]
impute_max_age = 10800
z = 25
[sync]
sync_interval = 60
[replay]
file = "{csv}"
time_col = "time_hour"
device_col = "origin"
columns = {json.dumps(list(RAIN_COLUMNS))}
[deployment]
gateways = 3
""")
    report_path = tmp_path / "rain.json"
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "--config", str(config), "up", "--quiet",
         "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--report", str(report_path), "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["readings"]["unaccounted"] == 0
    assert "federated prequential balanced accuracy" in done.stdout

    plan = load_readings(str(csv), "time_hour", "origin", columns=RAIN_COLUMNS)
    cleaning = CleaningConfig(policy=ChannelPolicy(max_age=10_800.0, z=25.0))
    unweighted = evaluate(plan, EvaluateSettings(RAIN, kind="binary", gateways=3,
                                                 cleaning=cleaning))
    none = unweighted["strategies"]["federated"]["mean"]["balanced_accuracy"]
    federated = report["federated"]
    # measured: balanced 0.875 under up, unweighted 0.70 offline (0.71 under up)
    assert federated["balanced_accuracy"] >= none + 0.1, (federated, none)
    # each gateway beats the unweighted fleet at the same gateway; under load gw-0 varies run
    # to run (balanced accuracy 0.80-0.88, ROC AUC 0.885-0.95 measured), so no tighter bar
    alone = unweighted["strategies"]["federated"]["gateways"]
    for gateway, figures in report["prequential"].items():
        print(f"{gateway}: balanced accuracy {figures['balanced_accuracy']:.3f} (unweighted "
              f"{alone[gateway]['balanced_accuracy']:.3f}), ROC AUC {figures['roc_auc']:.3f}")
        assert figures["balanced_accuracy"] >= alone[gateway]["balanced_accuracy"] + 0.05, (
            gateway, figures, alone[gateway])
        assert figures["roc_auc"] >= 0.85, (gateway, figures)
