"""CSV replay against a real mosquitto: every row once, per-device order, missing cells absent."""

import subprocess
import sys
import time
from collections import defaultdict

import orjson
import pytest

from broker.reading_codec import decode_readings, reading_to_dict
from broker.topics import Topics
from devices.replay import Replay, ReplayConfig
from tests.mqtt_helpers import Recorder, ServiceThread, run_fleetlearn, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DEVICES = ("dev-a", "dev-b", "dev-c")
T0 = 1_700_000_000


def make_rows(n: int = 50, run: int = 1) -> list[tuple[int, str, str, str]]:
    """(ts, device, temp, humidity) in time order; devices take turns, ``run`` rows each."""
    rows = []
    for i in range(n):
        temp = "NA" if i % 7 == 3 else f"{20 + i / 10:.1f}"
        humidity = "" if i % 5 == 0 else str(40 + i)
        rows.append((T0 + i, DEVICES[(i // run) % len(DEVICES)], temp, humidity))
    return rows


def write_csv(tmp_path, rows) -> str:
    """Odd rows first, then even ones: the file is out of time order on purpose."""
    path = tmp_path / "replay.csv"
    lines = ["ts,device,temp,humidity"] + [",".join(map(str, r)) for r in rows[1::2] + rows[::2]]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def expected(rows) -> dict[tuple[str, int], dict]:
    """(device, seq) -> the reading the replay must publish for it."""
    seqs: dict[str, int] = defaultdict(int)
    out = {}
    for ts, device, temp, humidity in rows:
        values = {}
        if temp != "NA":
            values["temp"] = float(temp)
        if humidity:
            values["humidity"] = float(humidity)
        out[device, seqs[device]] = {"device": device, "seq": seqs[device], "ts": float(ts),
                                     "values": values}
        seqs[device] += 1
    return out


def received(recorder: Recorder) -> list[dict]:
    """Every reading that arrived, in arrival order, batches (either layout) unpacked."""
    return [reading_to_dict(r) for p in recorder.on("/reading") for r in decode_readings(p)]


def layout_and_size(payload: bytes) -> tuple[str, int]:
    data = orjson.loads(payload)
    if isinstance(data, list):
        return "rows", len(data)
    return ("columns", len(data["seq"])) if isinstance(data["seq"], list) else ("single", 1)


def assert_each_row_once_in_order(readings: list[dict], rows) -> None:
    boots = {r.pop("boot", 0) for r in readings}  # one boot id: the replay's start, in ms
    assert len(boots) == 1 and abs(boots.pop() / 1000 - time.time()) < 600
    want = expected(rows)
    assert len(readings) == len(want)
    assert {(r["device"], r["seq"]): r for r in readings} == want
    for device in DEVICES:
        seqs = [r["seq"] for r in readings if r["device"] == device]
        assert seqs == list(range(len(seqs))), device


def test_replay_publishes_every_row_once_in_per_device_order(address, prefix, tmp_path):
    topics = Topics(prefix)
    rows = make_rows()
    recorder = Recorder(address, topics.readings_filter(), topics.metrics_filter)
    config = ReplayConfig(path=write_csv(tmp_path, rows), time_col="ts", device_col="device",
                          metrics_interval=0.05, max_unacked=7)
    replay = Replay(config, topics, address)
    replay.node.connect(timeout=5)

    def turn() -> None:
        replay.node.poll()
        recorder.poll()

    wait_until(lambda: replay.node.stopping, 20, turn, "the replay to stop by itself")
    replay.on_stop()
    replay.node.close()
    assert replay.done and replay.published == replay.total == 50

    def final_metrics() -> list[dict]:
        return [m for m in map(orjson.loads, recorder.on("/metrics/replay")) if m["done"]]

    recorder.wait(lambda: len(received(recorder)) >= 50 and final_metrics(),
                  what="50 readings and the final metrics")
    assert_each_row_once_in_order(received(recorder), rows)
    assert all(t.startswith(f"{prefix}/s0/") for t, _ in recorder.messages if "/reading" in t)
    final = final_metrics()[-1]
    assert final["kind"] == "replay" and final["published"] == final["total"] == 50
    recorder.close()


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_batches_hold_consecutive_readings_of_one_device(address, prefix, tmp_path, layout):
    topics = Topics(prefix)
    rows = make_rows(run=4)  # runs of 4 rows per device: batches of 3, then 1
    recorder = Recorder(address, topics.readings_filter())
    config = ReplayConfig(path=write_csv(tmp_path, rows), time_col="ts", device_col="device",
                          batch=3, layout=layout, site="lab")
    with ServiceThread(Replay(config, topics, address)) as replay:
        recorder.wait(lambda: replay.done and len(received(recorder)) >= 50,
                      what="the replay to finish")
    assert_each_row_once_in_order(received(recorder), rows)
    shapes = [layout_and_size(p) for p in recorder.on("/reading")]
    assert shapes == [(layout, 3), ("single", 1)] * 12 + [(layout, 2)]
    assert replay.messages == 25
    assert all("/lab/" in t for t, _ in recorder.messages)
    recorder.close()


def test_speed_paces_the_replay_by_the_recorded_times(address, prefix, tmp_path):
    topics = Topics(prefix)
    rows = make_rows(n=21)  # 20 s of recorded time
    recorder = Recorder(address, topics.readings_filter())
    config = ReplayConfig(path=write_csv(tmp_path, rows), time_col="ts", device_col="device",
                          speed=40.0)
    started = time.monotonic()
    with ServiceThread(Replay(config, topics, address)) as replay:
        recorder.wait(lambda: replay.done and len(received(recorder)) >= 21,
                      what="the paced replay to finish")
    # The last reading is due 20 s / 40 after the first: never earlier.
    assert time.monotonic() - started >= 0.5
    assert_each_row_once_in_order(received(recorder), rows)
    recorder.close()


# ---------------------------------------------------------------------------- the command


def fleetlearn(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetlearn", *args]


def test_cli_replays_the_file_and_exits_0(mosquitto, address, prefix, tmp_path):
    rows = make_rows()
    recorder = Recorder(address, Topics(prefix).readings_filter())
    err = run_fleetlearn(
        recorder, "devices", "replay", write_csv(tmp_path, rows), "--time-col", "ts",
        "--device-col", "device", "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix)
    assert "published 50 of 50 readings from 3 devices" in err
    recorder.wait(lambda: len(received(recorder)) >= 50, what="50 readings")
    assert_each_row_once_in_order(received(recorder), rows)
    recorder.close()


@pytest.mark.parametrize(("args", "message"), [
    (["{missing}", "--time-col", "ts", "--device-col", "device"], "no such file"),
    (["{csv}", "--time-col", "time", "--device-col", "device"], "no time column 'time'"),
    (["{csv}", "--time-col", "ts", "--device-col", "device", "--columns", "temp,wind"],
     "no column 'wind'"),
    (["{csv}", "--time-col", "ts", "--device-col", "device", "--site", "a/b"], "invalid site"),
    (["{csv}", "--time-col", "ts", "--device-col", "device", "--speed", "0"], "--speed"),
], ids=["missing-file", "unknown-time-col", "unknown-column", "bad-site", "zero-speed"])
def test_cli_misuse_gets_one_line_and_exit_code_2(tmp_path, args, message):
    csv_path = write_csv(tmp_path, make_rows(n=3))
    args = [a.format(csv=csv_path, missing=tmp_path / "missing.csv") for a in args]
    done = subprocess.run(fleetlearn("devices", "replay", *args), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("fleetlearn: error:")
    assert message in done.stderr


def test_cli_reads_a_date_and_a_time_column_in_a_given_format(mosquitto, address, prefix,
                                                              tmp_path):
    # Prepare: a logger's export: two preamble lines, day-first dates, times of day
    path = tmp_path / "logger.csv"
    path.write_text("exported by logger 7\n\nday,clock,dev,t\n"
                    "02/01/2013,06:30,d1,2.0\n01/01/2013,06:00,d1,1.0\n01/01/2013,07:00,d2,3.0\n")
    recorder = Recorder(address, Topics(prefix).readings_filter())
    # Execute
    err = run_fleetlearn(
        recorder, "devices", "replay", str(path), "--time-col", "clock", "--date-col", "day",
        "--time-format", "%d/%m/%Y %H:%M", "--skip-rows", "2", "--device-col", "dev",
        "--broker", f"127.0.0.1:{mosquitto.port}", "--prefix", prefix)
    # Assert: every row published once, in time order, with its time in epoch seconds
    assert "published 3 of 3 readings from 2 devices" in err
    recorder.wait(lambda: len(recorder.messages) >= 3, what="3 readings")
    got = sorted((orjson.loads(p)["ts"], orjson.loads(p)["device"]) for _, p in recorder.messages)
    assert got == [(1357020000.0, "d1"), (1357023600.0, "d2"), (1357108200.0, "d1")]
    recorder.close()
