"""`up --duration` is the time readings flow: the clock starts once the fleet is online, not
when its process is spawned (on a loaded machine a fleet's start-up took longer than a short
run, which then published nothing and exited 0)."""

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_run_shorter_than_a_fleets_start_up_still_has_readings(tmp_path):
    report_path = tmp_path / "run.json"
    # half a second: less than a Python process takes to import numpy and connect
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "up", "--quiet", "--duration",
                           "0.5", "--devices", "4", "--report", str(report_path),
                           "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    readings = json.loads(report_path.read_text())["readings"]
    assert readings["published"] > 0 and readings["unaccounted"] == 0, readings
