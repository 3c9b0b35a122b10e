"""The command line: help for every subcommand, one-line errors for misuse."""

import subprocess
import sys

import pytest

from broker.mosquitto import free_port

pytestmark = pytest.mark.timeout(60)

SUBCOMMANDS = [["broker"], ["devices", "simulate"], ["devices", "replay"], ["gateway"],
               ["aggregator"], ["predict"], ["bench"], ["keys", "init"], ["evaluate"],
               ["report"], ["up"], ["dashboard"]]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "fleetlearn", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(command):
    done = run(*command, "--help")
    assert done.returncode == 0 and "Usage:" in done.stdout and "--" in done.stdout


@pytest.mark.parametrize("args", [
    ["gateway", "--partition", "bucket:5/2"],
    ["gateway", "--features", ",,"],
    ["gateway", "--id", "a/b"],
    ["gateway", "--features", "a,power"],
    ["up", "--rate", "0"],
    ["up", "--broker", "localhost:notaport"],
    ["up", "--prefix", "a/#"],
    ["devices", "simulate", "--batch", "0"],
    ["aggregator", "--learners", "gw-0,a/b"],
    ["aggregator", "--learners", ","],
    ["gateway", "--max-seq-jump", "10"],  # below the reorder window
    ["gateway", "--max-version-jump", "-1"],
    ["predict", "--stale", "sometimes"],
    ["predict", "--max-model-age", "0"],
    ["predict", "--max-model-magnitude", "0"],
    ["no-such-command"],
])
def test_misuse_gets_one_line_and_a_non_zero_exit(args):
    done = run(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("fleetlearn: error:")


def test_an_absent_broker_gets_one_line_that_says_what_to_do():
    done = run("aggregator", "--broker", f"127.0.0.1:{free_port()}",
               env={"FLEETLEARN_CONNECT_TIMEOUT": "0.5"})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "fleetlearn broker" in done.stderr


@pytest.mark.integration
def test_broker_subcommand_stops_its_mosquitto_on_sigterm(tmp_path):
    import signal
    import time

    from broker.mosquitto import port_accepts
    from tests.conftest import process_alive
    from tests.mqtt_helpers import wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fleetlearn", "broker", "--port", str(port),
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line and port_accepts("127.0.0.1", port)
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = f.read().split()
        assert len(children) == 1
        mosquitto_pid = int(children[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        wait_until(lambda: not process_alive(mosquitto_pid), 5, lambda: time.sleep(0.05),
                   "mosquitto to exit")
    finally:
        proc.kill()
        proc.wait()


def test_bench_smoke_run_writes_its_rows(tmp_path):
    out = tmp_path / "bench.json"
    done = run("bench", "--scenario", "cleaning", "--n", "200", "--repeats", "1",
               "--json", str(out))
    assert done.returncode == 0, done.stderr
    import json

    rows = json.loads(out.read_text())
    assert {r["stream"] for r in rows} == {"clean stream", "all faults at 5 %"}
    assert all(r["per_s"] > 0 and r["baseline_per_s"] > 0 and r["ratio"] > 0 for r in rows)


def test_bench_refuses_an_unknown_scenario():
    done = run("bench", "--scenario", "nope")
    assert done.returncode == 2 and "unknown scenario" in done.stderr
