"""The HTML report, drawn from small hand-made reports: one image per plot, each with data;
a replay's (no truth) has no weight-error plot; a binary task plots accuracy and log-loss."""

import copy

import pytest

from fleetlearn.deploy.html_report import render_html
from fleetlearn.deploy.plots import report_plots

pytestmark = pytest.mark.timeout(60)

REPORT = {
    "source": "simulated fleet", "seconds": 2.0,
    "readings": {"published": 300, "learned": 290, "rejected": {"schema": 6, "range": 4},
                 "unaccounted": 0},
    "model": {"history": [[1, 0.5, 0.4], [2, 1.0, 0.1], [3, 1.6, 0.05]],
              "rollbacks": [{"version": 3, "reason": "loss rose"}],
              "drift_reactions": [{"version": 2, "policy": "rescale"}],
              "versions_seen": 3, "last_version": 3, "weight_error": 0.05},
    "truth": {"weights": {"a": 1.0}, "intercept": 0.0, "target": "power"},
    "federated": {"n": 10, "mae": 0.3, "r2": 0.8}, "prequential": {},
    "series": {"gateways": {"gw-0": [[0.5, {"n": 5, "mae": 1.0, "r2": 0.1}],
                                     [1.5, {"n": 9, "mae": 0.5, "r2": 0.5}]]},
               "federated": [[1.0, {"n": 5, "mae": 0.9, "r2": 0.2}]],
               "published": [[0.0, 0], [1.0, 100], [2.0, 300]],
               "learned": [[0.5, 0], [1.5, 150], [2.5, 290]]},
}


def test_every_plot_of_a_simulated_run_is_drawn_with_its_data():
    page, points = render_html(REPORT)
    assert set(points) == {"error", "quality", "version", "weight_error", "rejections",
                           "throughput"}
    assert points == {"error": 3, "quality": 3, "version": 3, "weight_error": 3,
                      "rejections": 2, "throughput": 4}
    assert page.count("<img") == len(points) == page.count("data:image/png;base64,")
    assert "<script" not in page and "http" not in page.split("</style>")[1]  # self-contained


def test_drift_reactions_and_rollbacks_are_marked_at_their_models_time():
    error = report_plots(REPORT)[0]
    assert error.marks == [(1.0, "drift reaction v2"), (1.6, "rollback v3")]


def test_the_truths_drift_is_marked_and_many_marks_go_to_the_legend():
    drifted = copy.deepcopy(REPORT)
    drifted["series"]["truth_drifted_at"] = 0.8
    drifted["model"]["rollbacks"] = [{"version": v} for v in (1, 2, 3)] * 3
    error = report_plots(drifted)[0]
    assert (0.8, "truth drifted") in error.marks and len(error.marks) == 11
    page, points = render_html(drifted)
    assert page.count("<img") == len(points) == 6


def test_a_replay_report_has_no_weight_error_plot():
    replay = copy.deepcopy(REPORT) | {"truth": None, "source": "replay"}
    replay["model"]["history"] = [[v, at, None] for v, at, _ in replay["model"]["history"]]
    page, points = render_html(replay)
    assert "weight_error" not in points and "weight error" not in page
    assert page.count("<img") == len(points) == 5


def test_a_binary_task_plots_accuracy_and_log_loss():
    binary = copy.deepcopy(REPORT)
    binary["federated"] = {"n": 9, "accuracy": 0.8, "log_loss": 0.4}
    binary["series"]["gateways"] = {"gw-0": [[0.5, {"n": 5, "accuracy": 0.6,
                                                    "log_loss": 0.6}]]}
    binary["series"]["federated"] = []
    plots = {p.name: p for p in report_plots(binary)}
    assert "log-loss" in plots["error"].title and plots["error"].lines["gw-0"][1] == [0.6]
    assert "accuracy" in plots["quality"].title and plots["quality"].lines["gw-0"][1] == [0.6]


def test_a_plot_without_data_is_left_out():
    clean = copy.deepcopy(REPORT)
    clean["readings"]["rejected"] = {}
    _, points = render_html(clean)
    assert "rejections" not in points and all(n > 0 for n in points.values())


def test_the_cli_does_not_load_matplotlib_until_a_page_is_drawn():
    import subprocess
    import sys

    code = ("import sys, fleetlearn.cli, fleetlearn.commands.up, fleetlearn.deploy.up; "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
