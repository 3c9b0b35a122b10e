"""Real data, climates far apart: mosaicData's daily weather of five cities (real gaps),
replayed through a real mosquitto into five gateways, one city each, with the default learner
and personal parts per site (issue 15's goal on its second data set)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "examples" / "cities.toml"


@pytest.fixture(scope="module")
def cities_csv(tmp_path_factory) -> Path:
    """The data as the docs make it (scripts/cities_csv.py)."""
    out = tmp_path_factory.mktemp("cities") / "cities.csv"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cities_csv.py"), str(out)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"3,655 rows written to {out}"
    return out


def test_personalised_is_at_least_the_best_of_alone_and_federated_in_every_city(
        mosquitto, prefix, tmp_path, cities_csv):
    report_path = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, "-m", "fleetlearn", "--config", str(CONFIG), "up", "--quiet",
         "--replay", str(cities_csv), "--broker", f"127.0.0.1:{mosquitto.port}",
         "--prefix", prefix, "--report", str(report_path), "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    readings = report["readings"]
    assert readings["published"] == 3_655 and readings["unaccounted"] == 0
    assert set(report["prequential"]) == {f"gw-{g}" for g in range(5)}
    found = report["baselines"]["strategies"]
    personal, local, federated = (found[s]["gateways"] for s in
                                  ("personalised", "local", "federated"))
    assert set(personal) == {f"gw-{g}" for g in range(5)}
    for gateway, figures in personal.items():
        best = max(local[gateway]["r2"], federated[gateway]["r2"])
        assert figures["r2"] >= best, (gateway, figures["r2"], local[gateway]["r2"],
                                       federated[gateway]["r2"])
    # one model for five climates: the personalised fleet beats one central learner
    assert found["personalised"]["pooled"]["r2"] >= found["central"]["pooled"]["r2"] - 0.002
