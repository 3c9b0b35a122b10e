"""The terminal view of `up`: a headline that does not wrap on an 80- or 140-column terminal,
a replay's summary without the rows about a truth it has not got, binary metrics shown."""

import io

import numpy as np
import pytest
from rich.console import Console

from broker.messages import LinearParams, Model, Scaler
from devices.truth import GroundTruth
from fleetlearn.deploy.display import headline, progress_table, summary_table
from fleetlearn.deploy.state import DeploymentState

pytestmark = pytest.mark.timeout(30)


def render(renderable, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


def running(published: int, version: int, metrics: dict) -> DeploymentState:
    state = DeploymentState(truth=GroundTruth({"a": 2.0}, 0.0, 0.1))
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": published})
    for gw in ("gw-0", "gw-1"):
        state.on_metrics({"node": gw, "kind": "gateway", "learned": published // 2,
                          "partition": "bucket:0/2", "prequential": metrics})
    state.on_metrics({"node": "aggregator", "kind": "aggregator", "federated": metrics})
    params = LinearParams(("a",), np.array([1.98]), 0.0)
    state.on_model(Model(version, 1.0, published, ("gw-0",), "y", params, Scaler.empty(1)), 3.0)
    return state


REGRESSION = {"n": 900, "mae": 0.21, "rmse": 0.3, "r2": 0.987}
BINARY = {"n": 900, "accuracy": 0.912, "balanced_accuracy": 0.804, "log_loss": 0.231,
          "roc_auc": 0.951}


@pytest.mark.parametrize("width", [80, 140])
def test_the_headline_is_one_line_on_a_normal_terminal(width):
    state = running(1_004_380, 240, REGRESSION)
    line = headline(state, 312.25, 21_000.0)
    lines = render(progress_table(state, 312.25, 21_000.0), width)
    assert lines[0] == line  # whole, on the first line
    assert "fed R² 0.987" in line and "weight err 0.010" in line
    assert lines[1].startswith("┏")  # the table starts right under it: nothing wrapped


def test_a_headline_too_long_for_the_terminal_is_cut_not_wrapped():
    state = running(1_004_380, 240, REGRESSION)
    lines = render(progress_table(state, 312.25, 21_000.0), 40)
    assert lines[0].endswith("…") and len(lines[0]) <= 40 and lines[1].startswith("┏")


def test_a_binary_task_shows_accuracy_and_log_loss_live():
    state = running(5_000, 7, BINARY)
    text = "\n".join(render(progress_table(state, 9.0, 500.0), 140))
    assert "fed accuracy 0.912" in text
    assert "accuracy" in text and "log-loss" in text and "MAE" not in text
    assert "0.231" in text and " - " not in text


def summary(state: DeploymentState, truth: bool, federated: dict) -> list[str]:
    report = {"readings": state.readings(), "seconds": 9.0, "readings_per_s": 500.0,
              "model": state.model_summary(), "federated": federated,
              "settings": {}, "predictions": 0, "truth": {"weights": {}} if truth else None,
              "prequential": {n: m["prequential"] for n, m in state.of_kind("gateway").items()}}
    return render(summary_table(report), 140)


def test_a_replay_summary_leaves_out_the_rows_about_a_truth():
    state = running(5_000, 7, REGRESSION)
    replay = "\n".join(summary(state, truth=False, federated=REGRESSION))
    simulated = "\n".join(summary(state, truth=True, federated=REGRESSION))
    assert "weight error vs truth" not in replay and "seconds to within" not in replay
    assert "weight error vs truth" in simulated and "seconds to within 5%" in simulated


def test_a_binary_summary_shows_its_metrics_instead_of_dashes():
    text = "\n".join(summary(running(5_000, 7, BINARY), truth=False, federated=BINARY))
    assert "federated prequential accuracy" in text and "0.9120" in text
    assert "federated prequential log-loss" in text and "0.2310" in text
    assert "federated prequential balanced accuracy" in text and "0.8040" in text
    assert "federated prequential ROC AUC" in text and "0.9510" in text
    assert "gw-0 prequential accuracy / balanced / log-loss" in text
    assert "0.9120 / 0.8040 / 0.2310" in text
    assert "R²" not in text and "MAE" not in text


@pytest.mark.parametrize("width", [80, 140])
def test_the_summary_title_is_one_line(width):
    state = running(5_000, 7, REGRESSION)
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": 1_004_380})
    lines = summary(state, truth=True, federated=REGRESSION)
    assert "NOT accounted for" in lines[0] and lines[1].startswith("┌")
