"""`up --report F.json` also writes F.html, a page of plots of the run, each with data; and
`fleetlearn report` draws the same page again from the JSON."""

import json
import subprocess
import sys

import pytest

from fleetlearn.deploy.plots import report_plots

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

PLOTS = {"error", "quality", "version", "weight_error", "rejections", "throughput"}


def test_up_writes_a_page_whose_every_plot_has_data(tmp_path):
    report_path = tmp_path / "run.json"
    # its own broker; faults so that readings are rejected (the rejections plot has data)
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "up", "--quiet", "--seed", "3",
                           "--devices", "12", "--duration", "6", "--faults", "all=0.05",
                           "--report", str(report_path), "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "run.html").read_text()
    report = json.loads(report_path.read_text())

    plots = {p.name: p.points for p in report_plots(report)}
    assert set(plots) == PLOTS, plots
    assert all(n > 0 for n in plots.values()), plots
    assert set(report["series"]["gateways"]) == {"gw-0", "gw-1"}
    assert {"published", "learned"} <= set(next(p for p in report_plots(report)
                                                if p.name == "throughput").lines)
    assert page.count("<img") == len(PLOTS) == page.count("data:image/png;base64,")
    for name in PLOTS:
        assert f'<figure id="{name}">' in page

    again = tmp_path / "again.html"
    redo = subprocess.run([sys.executable, "-m", "fleetlearn", "report", str(report_path),
                           "--html", str(again)], capture_output=True, text=True, timeout=60)
    assert redo.returncode == 0, redo.stderr
    assert again.read_text().count("<img") == len(PLOTS)


def test_report_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"a": 1}')
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "report", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("fleetlearn: error:")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "x.html").exists()
