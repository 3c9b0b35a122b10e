"""A task that does not fit its stream ends `up` with one clear line and exit code 4, against a
real mosquitto: a feature or a target the readings never carry, a binary target never 0 or 1.
A channel that is only sometimes missing, or a few labels that are not 0/1, do not stop it
(the whole weather replay, with its real gaps, exits 0 in test_weather.py)."""

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from broker.topics import Topics
from broker.wire import encode_json
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WEATHER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "weather.toml"


def up(mosquitto, prefix, tmp_path, *args: str, config: Path | None = None
       ) -> subprocess.CompletedProcess:
    head = [sys.executable, "-m", "fleetlearn"] + (["--config", str(config)] if config else [])
    return subprocess.run(
        [*head, "up", "--quiet", "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix,
         "--log-dir", str(tmp_path / "logs"), *args],
        capture_output=True, text=True, timeout=100)


def write_csv(path: Path, rows: int, target, gap_every: int = 0) -> Path:
    """Two devices, hourly; ``temp`` missing in every ``gap_every``-th row (0: never)."""
    lines = ["time,device,temp,label"]
    for i in range(rows):
        temp = "" if gap_every and i % gap_every == 0 else f"{10 + (i % 17) * 0.5:.1f}"
        lines.append(f"{1_600_000_000 + 3600 * (i // 2)},d{i % 2},{temp},{target(i)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_target_the_replay_never_carries_ends_up_with_exit_4(mosquitto, prefix, tmp_path):
    # Execute: the weather replay, but the task's target is a column it does not publish
    done = up(mosquitto, prefix, tmp_path, "--gateways", "1", "--target", "humidity",
              config=WEATHER)
    # Assert: one line names the channel and what the readings do carry
    assert done.returncode == 4, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "task does not fit" in x]
    assert line.startswith("fleetlearn: error: gw-0: task does not fit the stream: channel "
                           "'humidity' was in none of the first")
    assert "the readings carry: dewp, humid, precip, pressure, temp, visib" in line
    # and the gateway said it once in its log, as an ERROR (and once more as it exited)
    said = [x for x in (tmp_path / "logs" / "gw-0.log").read_text().splitlines()
            if "task does not fit" in x]
    assert len(said) == 2 and " ERROR " in said[0] and said[1].startswith("fleetlearn: error:")


def test_a_feature_the_fleet_never_sends_ends_up_with_exit_4(mosquitto, prefix, tmp_path):
    done = up(mosquitto, prefix, tmp_path, "--gateways", "2", "--duration", "60",
              "--features", "temperature,nosuch", "--rate", "500")
    assert done.returncode == 4, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "task does not fit" in x]
    assert "channel 'nosuch' was in none of the first" in line
    assert "the readings carry: humidity, power, pressure, temperature" in line


def test_a_binary_target_that_is_never_0_or_1_ends_up_with_exit_4(mosquitto, prefix,
                                                                  tmp_path):
    data = write_csv(tmp_path / "levels.csv", 1000, lambda i: 2 + i % 5)
    done = up(mosquitto, prefix, tmp_path, "--gateways", "1", "--replay", str(data),
              "--features", "temp", "--target", "label", "--kind", "binary")
    assert done.returncode == 4, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "task does not fit" in x]
    assert "the binary task's target label was neither 0 nor 1 in" in line
    assert "(none learned)" in line


def test_half_missing_feature_and_a_few_bad_labels_run_to_the_end(mosquitto, prefix,
                                                                  tmp_path):
    # Prepare: temp missing in every other row, and every 100th label a 2
    data = write_csv(tmp_path / "gappy.csv", 1000, lambda i: 2 if i % 100 == 7 else i % 2,
                     gap_every=2)
    report = tmp_path / "report.json"
    # Execute
    done = up(mosquitto, prefix, tmp_path, "--gateways", "1", "--replay", str(data),
              "--features", "temp", "--target", "label", "--kind", "binary",
              "--report", str(report))
    # Assert: the run ends normally; the bad labels are refused with their own reason
    assert done.returncode == 0, done.stderr
    rejected = json.loads(report.read_text())["readings"]["rejected"]
    assert rejected.get("target_not_binary") == 10


def test_a_standalone_gateway_says_it_once_and_exits_4(address, prefix):
    # Prepare: a gateway whose target no reading carries, judging after 20 readings
    topics = Topics(prefix)
    recorder = Recorder(address, topics.node_status("gw-x"), topics.metrics("gw-x"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlearn", "gateway", "--id", "gw-x", "--broker",
         f"127.0.0.1:{address.port}", "--prefix", prefix, "--features", "temperature",
         "--target", "nosuch", "--check-after", "20", "--max-age", "0", "--max-skew", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        recorder.wait(lambda: b"online" in recorder.on("status/gw-x"), timeout=30,
                      what="the gateway online")
        # Execute: 30 readings with other channels
        for seq in range(30):
            recorder.publish(topics.reading("s0", "d1"), encode_json(
                {"device": "d1", "seq": seq, "ts": 1000.0 + seq,
                 "values": {"temperature": 20.0, "power": 1.5}}))
        recorder.wait(lambda: proc.poll() is not None, timeout=30, what="the gateway to exit")
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        recorder.close()
    # Assert: exit code 4; one ERROR naming the channel and what the readings carry
    assert proc.returncode == 4, err
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert len(errors) == 1, err
    assert "channel 'nosuch' was in none of the first" in errors[0]
    assert "the readings carry: power, temperature" in errors[0]
    # and its metrics said so too
    said = [orjson.loads(p).get("task_problem") for p in recorder.on("metrics/gw-x")]
    assert any(s and "'nosuch'" in s for s in said)
