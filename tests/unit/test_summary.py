"""What `up` says at the end: the report's split of the readings and the summary's colour."""

from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from fleetlearn.deploy.display import BAD, ProgressView, summary_table
from fleetlearn.deploy.report import deployment_report
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.state import DeploymentState


def deployment(published: int, learned: int) -> SimpleNamespace:
    state = DeploymentState()
    state.on_metrics({"node": "fleet", "kind": "fleet", "published": published,
                      "send_buffer_full": 7})
    state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": learned,
                      "rejected": {"schema": 1}})
    return SimpleNamespace(settings=UpSettings(drain_timeout=2.5), state=state,
                           fleet_stopped=11.0, fleet_started=1.0, node_config={},
                           address="127.0.0.1:1", own_broker=None, interrupted=False,
                           config_path=Path("c.toml"), truth=None, children=[],
                           log_dir=Path("logs"), samples_dir=Path("logs/samples"))


def test_the_report_carries_the_split_and_whether_all_is_accounted_for():
    report = deployment_report(deployment(published=100, learned=60))
    r = report["readings"]
    assert (r["published"], r["learned"], r["rejected"]) == (100, 60, {"schema": 1})
    assert r["not_taken_in"] == 39 and r["send_buffer_full"] == 7
    assert r["published_means"] == "acknowledged"
    assert report["accounted"] is False
    assert report["settings"]["drain_timeout"] == 2.5
    assert deployment_report(deployment(published=100, learned=99))["accounted"] is True


def test_an_unaccounted_run_turns_the_summary_red_and_says_how_many():
    table = summary_table(deployment_report(deployment(published=100, learned=60)))
    assert "39 readings NOT accounted for" in str(table.title)
    assert table.title_style == BAD
    styles = {str(table.columns[0]._cells[i]): row.style for i, row in enumerate(table.rows)}
    assert styles["  not taken in before the drain deadline"] == BAD
    assert styles["readings unaccounted"] == BAD


def test_an_accounted_run_has_a_plain_summary():
    table = summary_table(deployment_report(deployment(published=100, learned=99)))
    assert table.title == "fleetlearn up: summary" and not table.title_style
    assert BAD not in {row.style for row in table.rows}


def test_the_drain_shows_how_many_are_taken_in(tmp_path):
    with open(tmp_path / "out.txt", "w") as out:
        view = ProgressView(Console(file=out, width=120))
        view.draining(deployment(published=1_004_380, learned=812_000).state, 4.0)
    text = (tmp_path / "out.txt").read_text()
    assert "draining: 812,001 of 1,004,380 taken in (at most 4.0 s more)" in text


def test_the_report_says_what_a_gateway_found_about_the_task():
    dep = deployment(published=100, learned=0)
    assert deployment_report(dep)["task_problem"] is None
    dep.state.on_metrics({"node": "gw-0", "kind": "gateway", "learned": 0,
                          "task_problem": "task does not fit the stream: channel 'x' ..."})
    assert deployment_report(dep)["task_problem"] == (
        "gw-0: task does not fit the stream: channel 'x' ...")


def test_the_report_places_the_truths_drift_on_the_models_clock():
    import numpy as np

    from broker.messages import LinearParams, Model, Scaler
    from fleetlearn.deploy.report import truth_drifted_at

    dep = deployment(published=100, learned=99)
    assert truth_drifted_at(dep.state) is None
    dep.state.on_metrics({"node": "fleet", "kind": "fleet", "published": 100, "drifted": True,
                          "drifted_at": 1_000.0, "truth": {"weights": {"a": 1.0},
                                                           "intercept": 0.0, "noise_sd": 0.1,
                                                           "target": "y"}})
    params = LinearParams(("a",), np.array([1.0]), 0.0)
    for version, ts, at in ((1, 990.0, 5.25), (2, 995.0, 10.0)):  # seen 4.75 s, 5 s after
        dep.state.on_model(Model(version, ts, 10, ("gw-0",), "y", params, Scaler.empty(1)), at)
    assert truth_drifted_at(dep.state) == 15.0  # 1000 - 990 + 5 (the least gap)
