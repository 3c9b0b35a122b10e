"""A binary task's decision threshold travels: the aggregator announces the fleet's (the median
of the gateways' tuned thresholds) in each model's notes, and the predictor decides each
reading at the threshold of the model that predicted it (learners.imbalance)."""

import orjson
import pytest

from broker.model_codec import decode_model
from learners.imbalance import decision_threshold
from tests.mqtt_helpers import Recorder, run_fleetlearn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_predictions_of_a_binary_fleet_are_decided_at_the_fleets_tuned_threshold(
        mosquitto, address, prefix, tmp_path):
    config = tmp_path / "binary.toml"
    config.write_text('[learner]\nthreshold = "auto"\n')  # unweighted: 5 % positives
    watcher = Recorder(address, f"{prefix}/learn/model", f"{prefix}/+/+/prediction")
    report_path = tmp_path / "report.json"
    run_fleetlearn(
        watcher, "--config", str(config), "up", "--broker", f"127.0.0.1:{mosquitto.port}",
        "--prefix", prefix, "--devices", "10", "--duration", "8", "--positives", "0.05",
        "--target", "event", "--kind", "binary", "--features", "temperature,humidity,pressure",
        "--quiet", "--report", str(report_path), "--log-dir", str(tmp_path / "logs"),
        timeout=90)
    for _ in range(20):  # what was still on its way
        watcher.poll()
    watcher.close()
    report = orjson.loads(report_path.read_bytes())
    assert report["readings"]["unaccounted"] == 0

    models = {m.version: m for m in map(decode_model, watcher.on("/learn/model"))}
    assert len(models) >= 3
    final = models[max(models)]
    tuned = [g["threshold"] for g in report["prequential"].values()]
    # 5 % positives, no class weights: balanced accuracy is best well below 0.5, everywhere
    assert max(tuned) < 0.5 and 0.0 < final.notes["threshold"] < 0.5
    assert report["threshold"] in {m.notes.get("threshold") for m in models.values()}

    predictions = [orjson.loads(p) for p in watcher.on("/prediction")]
    decided = [(p["prediction"], p["decision"], models[p["model_version"]])
               for p in predictions if p["model_version"] in models]
    assert len(decided) > 1000
    for probability, decision, model in decided:
        assert decision == int(probability >= decision_threshold(model.notes))
    # the threshold decides: readings said 1 that 0.5 would have said 0
    assert any(d == 1 and p < 0.5 for p, d, _ in decided)
