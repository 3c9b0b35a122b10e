"""The whole pipeline, as a user runs it: `fleetlearn up`, against a real mosquitto."""

import itertools
import json
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from broker.model_codec import decode_model
from devices.truth import GroundTruth, weight_error
from tests.conftest import process_alive
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SEED = 11


def fleetlearn(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetlearn", *args]


def test_pipeline_learns_the_ground_truth_on_a_shared_broker(mosquitto, address, prefix,
                                                             tmp_path):
    # Prepare: watch the model and the predictions while `up` runs on our broker
    watcher = Recorder(address, f"{prefix}/learn/model", f"{prefix}/+/+/prediction")
    report_path = tmp_path / "report.json"
    up = subprocess.Popen(fleetlearn(
        "up", "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
        "--devices", "24", "--sites", "4", "--gateways", "2", "--duration", "12",
        # AdaGrad's default 0.3 leaves the weights jittering around this fleet's truth: re-measured
        # after the outlier filter's fix (2026-11-30, two 20 s runs), 1 model in 104 after the
        # first 3 s was > 5 % off (8.5 %; median 2 %); a final model there fails the bar below.
        # 0.1 holds them within ~3 % (docs/benchmarks.md)
        "--lr", "0.1", "--seed", str(SEED), "--quiet", "--report", str(report_path),
        "--log-dir", str(tmp_path / "logs"),
    ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Execute
    deadline = time.monotonic() + 90
    while up.poll() is None and time.monotonic() < deadline:
        watcher.poll()
    out = up.communicate(timeout=10)[0].decode()
    assert up.returncode == 0, out
    for _ in range(20):
        watcher.poll()
    report = json.loads(report_path.read_text())

    # Assert: versions strictly increase, as broadcast
    models = [decode_model(p) for p in watcher.on("/learn/model")]
    versions = [m.version for m in models]
    assert len(versions) >= 5, versions
    assert all(a < b for a, b in itertools.pairwise(versions)), versions

    # the final broadcast weights are within 5 % of the ground truth
    truth = GroundTruth.from_seed(SEED)
    final = models[-1]
    assert weight_error(final.params.weights, truth, final.params.features) < 0.05

    # predictions arrive tagged with the version of a model that was broadcast
    predictions = [orjson.loads(p) for p in watcher.on("/prediction")]
    assert len(predictions) > 1000
    assert {p["model_version"] for p in predictions} <= set(versions)
    assert all(np.isfinite(p["prediction"]) for p in predictions)
    watcher.close()

    # a subscriber that connects late gets the retained model at once
    late = Recorder(address, f"{prefix}/learn/model")
    late.wait(lambda: late.messages, timeout=5, what="the retained model")
    assert decode_model(late.messages[0][1]).version == versions[-1]
    late.close()

    # every reading is learned, and every process started is stopped afterwards
    assert report["readings"]["unaccounted"] == 0
    assert report["readings"]["learned"] == report["readings"]["published"] > 5000
    assert not report["own_broker"]
    for proc in report["processes"]:
        assert proc["stopped"] and not process_alive(proc["pid"]), proc
    assert mosquitto.running  # the broker it was given is not its to stop


def test_up_with_its_own_broker_writes_a_true_report(tmp_path):
    report_path = tmp_path / "report.json"
    done = subprocess.run(fleetlearn(
        "up", "--duration", "8", "--devices", "20", "--lr", "0.1", "--report", str(report_path),
        "--log-dir", str(tmp_path / "logs"),
    ), capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "summary" in done.stdout and "readings published" in done.stdout
    report = json.loads(report_path.read_text())
    readings, model = report["readings"], report["model"]
    assert readings["published"] > 2000
    assert readings["learned"] == readings["published"] and readings["unaccounted"] == 0
    assert model["strictly_increasing"] and model["last_version"] >= 5
    assert model["weight_error"] < 0.05
    assert model["seconds_to_within"] is not None
    assert report["predictions"] > 0
    assert set(report["prequential"]) == {"gw-0", "gw-1"}
    assert report["federated"]["r2"] > 0.5
    pids = [p["pid"] for p in report["processes"]] + [report["broker_pid"]]
    assert len(pids) == 6 and not any(process_alive(pid) for pid in pids)


# each run also sends its readings in batches of 10, one in each layout (it learns the same)
@pytest.mark.parametrize(("strategy", "merge", "layout"), [("fedasync", "mean", "rows"),
                                                           ("fedbuff", "median", "columns")])
def test_async_and_robust_strategies_learn_as_well_end_to_end(mosquitto, prefix, tmp_path,
                                                               strategy, merge, layout):
    report_path = tmp_path / "report.json"
    done = subprocess.run(fleetlearn(
        "up", "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix, "--duration", "8",
        "--strategy", strategy, "--merge", merge, "--lr", "0.1", "--quiet",
        "--batch", "10", "--layout", layout,
        "--report", str(report_path), "--log-dir", str(tmp_path / "logs"),
    ), capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["settings"]["strategy"] == strategy
    assert (report["settings"]["batch"], report["settings"]["layout"]) == (10, layout)
    assert report["readings"]["learned"] == report["readings"]["published"] > 2000
    assert report["readings"]["unaccounted"] == 0
    assert report["model"]["strictly_increasing"] and report["model"]["weight_error"] < 0.05
    assert report["federated"]["r2"] > 0.9  # the learners predict well all along
