"""`up --report` compares the fleet's model with persistence, each gateway alone and one central
learner on exactly the samples the gateways learned (fleetlearn.deploy.baselines)."""

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_the_report_scores_every_baseline_on_the_samples_learned(tmp_path):
    report_path = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "up", "--seed", "5",
                           "--devices", "12", "--duration", "5", "--report", str(report_path),
                           "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    found = report["baselines"]
    learned = sum(m["n"] + 1 for m in report["prequential"].values())  # the first: no guess
    assert found["samples"] == learned > 1000 and found["dropped"] == 0
    strategies = found["strategies"]
    # personal parts per site are on by default: the gateways' own prequential figures are the
    # personalised predictions', the global model's are "federated"
    assert set(strategies) == {"persistence", "local", "central", "federated", "personalised"}
    for name, pq in report["prequential"].items():
        fed = strategies["personalised"]["gateways"][name]
        assert fed["n"] == pq["n"]
        assert fed["r2"] == pytest.approx(pq["r2"], abs=1e-6)
        assert fed["mae"] == pytest.approx(pq["mae"], rel=1e-6)
    # on a linear truth with independent features, any learner beats yesterday's value
    assert strategies["central"]["pooled"]["r2"] > strategies["persistence"]["pooled"]["r2"]
    assert "R² mean / pooled: central" in done.stdout
    page = (tmp_path / "run.html").read_text()
    assert '<table id="baselines">' in page and page.count("<td title=") == 5


def test_without_personal_parts_the_fleets_figures_are_the_global_models(tmp_path):
    """Also: half a second of `--duration` still has readings (up's clock starts once the fleet
    is online; before, a loaded machine's fleet start-up outlasted a short run: 0 published)."""
    report_path = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "up", "--quiet", "--seed", "6",
                           "--devices", "8", "--duration", "0.5", "--personalize", "none",
                           "--report", str(report_path), "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["readings"]["published"] > 0 and report["readings"]["unaccounted"] == 0
    strategies = report["baselines"]["strategies"]
    assert "personalised" not in strategies
    for name, pq in report["prequential"].items():
        fed = strategies["federated"]["gateways"][name]
        assert fed["n"] == pq["n"] and fed["r2"] == pytest.approx(pq["r2"], abs=1e-6)
