"""Stopping and connecting as real deployments do it (issue 12): Ctrl-C in `up`, a broker that is
not there or goes away, a parent that dies, a port that is taken; all against real mosquitto."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.mosquitto import free_port
from tests.conftest import process_alive
from tests.mqtt_helpers import Recorder, wait_until

pytestmark = pytest.mark.integration

FLEETLEARN = [sys.executable, "-m", "fleetlearn"]


def tick() -> None:
    """Between two looks at another process (the condition is what is waited on)."""
    time.sleep(0.05)


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def start_up(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`fleetlearn up` in a session of its own, as a terminal would run it (its group gets the
    Ctrl-C)."""
    return subprocess.Popen(
        [*FLEETLEARN, "up", "--quiet", "--log-dir", str(tmp_path / "logs"), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5", **(env or {})})


def wait_for_fleet(tmp_path: Path, up: subprocess.Popen) -> None:
    wait_until(lambda: (tmp_path / "logs" / "fleet.log").exists() or up.poll() is not None,
               60, tick, "the fleet to start")
    assert up.poll() is None, up.stderr.read()


def ended(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


SMALL = ("--devices", "4", "--sites", "2", "--gateways", "2", "--rate", "200")


@pytest.mark.timeout(120)
def test_one_ctrl_c_in_up_stops_everything_writes_the_report_and_exits_0(tmp_path):
    report = tmp_path / "report.json"
    up = start_up(tmp_path, "--duration", "60", "--report", str(report), *SMALL)
    try:
        wait_for_fleet(tmp_path, up)
        os.killpg(up.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole foreground group
        pressed = time.monotonic()
        assert up.wait(10) == 0, up.stderr.read()
        took = time.monotonic() - pressed
        result = json.loads(report.read_text())
        assert result["interrupted"] is True
        pids = [p["pid"] for p in result["processes"]] + [result["broker_pid"]]
        assert len(pids) == 6 and all(pids)
        wait_until(lambda: not any(process_alive(p) for p in pids), 3, tick, "no process left")
        assert took < 10
    finally:
        ended(up)


@pytest.mark.timeout(120)
def test_a_second_ctrl_c_kills_everything_at_once_and_exits_130(tmp_path):
    report = tmp_path / "report.json"
    up = start_up(tmp_path, "--duration", "60", "--report", str(report), *SMALL)
    try:
        wait_for_fleet(tmp_path, up)
        # broker, aggregator, 2 gateways, predictor, fleet (its log file opens just before it)
        wait_until(lambda: len(children_of(up.pid)) == 6, 10, tick, "the six processes")
        started = children_of(up.pid)
        # a paused gateway keeps the drain waiting for its bound, so the second Ctrl-C comes
        # while `up` still drains, however slow this machine is
        os.kill(next(p for p in started if "gw-0" in cmdline(p)), signal.SIGSTOP)
        os.killpg(up.pid, signal.SIGINT)
        # the first was taken: `up` stopped the fleet
        wait_until(lambda: len(children_of(up.pid)) < 6, 10, tick, "the fleet to stop")
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(5) == 130
        err = up.stderr.read()
        assert err.strip().splitlines()[-1] == "fleetlearn: interrupted", err
        wait_until(lambda: not any(process_alive(p) for p in started), 3, tick,
                   "no process left")
        assert json.loads(report.read_text())["interrupted"] is True
    finally:
        ended(up)


@pytest.mark.timeout(60)
def test_up_against_an_absent_broker_exits_1_with_one_line(tmp_path):
    up = start_up(tmp_path, "--broker", f"127.0.0.1:{free_port()}",
                  env={"FLEETLEARN_CONNECT_TIMEOUT": "2"})
    try:
        assert up.wait(15) == 1
        err = up.stderr.read()
        assert err.count("\n") == 1 and err.startswith("fleetlearn: error:"), err
        assert "broker" in err
        assert not list((tmp_path / "logs").glob("*.log")), "a node was started"
    finally:
        ended(up)


@pytest.mark.timeout(120)
def test_up_whose_broker_dies_stops_its_nodes_and_exits_1(mosquitto, tmp_path):
    up = start_up(tmp_path, "--broker", f"127.0.0.1:{mosquitto.port}", "--duration", "60",
                  *SMALL, env={"FLEETLEARN_CONNECT_TIMEOUT": "2"})
    try:
        wait_for_fleet(tmp_path, up)
        # fleet.log is opened just before the fleet process is made: wait for all five
        wait_until(lambda: len(children_of(up.pid)) == 5, 10, tick, "up's five nodes")
        nodes = children_of(up.pid)
        mosquitto.stop()
        assert up.wait(20) == 1
        err = up.stderr.read()
        assert err.count("\n") == 1 and "lost the broker" in err, err
        wait_until(lambda: not any(process_alive(p) for p in nodes), 3, tick, "no node left")
    finally:
        ended(up)


def start_node(address, prefix: str, tmp_path: Path, *args: str,
               env: dict | None = None) -> subprocess.Popen:
    with open(tmp_path / "node.err", "w") as err:  # the child has its own copy
        return subprocess.Popen(
            [*FLEETLEARN, *args, "--broker", str(address), "--prefix", prefix],
            stdout=subprocess.DEVNULL, stderr=err, text=True,
            env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5", **(env or {})})


def wait_online(address, prefix: str, node: str, proc: subprocess.Popen) -> None:
    recorder = Recorder(address, f"{prefix}/learn/status/{node}")
    try:
        recorder.wait(lambda: b"online" in recorder.on(node) or proc.poll() is not None, 60,
                      f"{node} online")
        assert proc.poll() is None
    finally:
        recorder.close()


@pytest.mark.timeout(90)
def test_sigterm_ends_a_gateway_that_is_reconnecting(mosquitto, address, prefix, tmp_path):
    gw = start_node(address, prefix, tmp_path, "gateway", "--id", "gw-t")
    try:
        wait_online(address, prefix, "gw-t", gw)
        mosquitto.stop()
        log = tmp_path / "node.err"
        # both connections at once: before, one retrying blocked the other's turn
        wait_until(lambda: all(f"{n}: broker unreachable" in log.read_text()
                               for n in ("gw-t", "gw-t-control")), 20, tick,
                   "both connections retrying")
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(5) == 0
    finally:
        ended(gw)


@pytest.mark.timeout(90)
def test_a_gateway_that_cannot_get_back_gives_up_with_exit_1(mosquitto, address, prefix,
                                                              tmp_path):
    gw = start_node(address, prefix, tmp_path, "gateway", "--id", "gw-t", "--give-up-after",
                    "3", env={"FLEETLEARN_LOG": "ERROR"})
    try:
        wait_online(address, prefix, "gw-t", gw)
        mosquitto.stop()
        assert gw.wait(15) == 1
        err = (tmp_path / "node.err").read_text()
        assert err.count("\n") == 1 and "lost the broker" in err, err
    finally:
        ended(gw)


INTERMEDIATE = """
import os, subprocess, sys
node = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL,
                        env={**os.environ, "FLEETLEARN_PARENT_PID": str(os.getpid())})
print(node.pid, flush=True)
node.wait()
"""


@pytest.mark.timeout(90)
def test_a_node_whose_parent_dies_exits_even_while_its_broker_is_away(mosquitto, address,
                                                                      prefix):
    parent = subprocess.Popen(
        [sys.executable, "-c", INTERMEDIATE, *FLEETLEARN, "predict", "--broker", str(address),
         "--prefix", prefix], stdout=subprocess.PIPE, text=True)
    node = int(parent.stdout.readline())
    try:
        wait_online(address, prefix, "predictor", parent)
        mosquitto.stop()  # the node is now retrying its broker
        parent.kill()
        parent.wait()
        wait_until(lambda: not process_alive(node), 5, tick, "the orphaned node to exit")
    finally:
        ended(parent)
        if process_alive(node):
            os.kill(node, signal.SIGKILL)


@pytest.mark.timeout(30)
def test_broker_on_a_taken_port_exits_1_with_one_line(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([*FLEETLEARN, "broker", "--port", str(port), "--data-dir",
                               str(tmp_path)], capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert "listening" not in done.stdout
    assert done.stderr.count("\n") == 1 and "Address already in use" in done.stderr


@pytest.mark.timeout(60)
def test_a_node_keeps_its_timers_while_the_broker_is_away_and_comes_back_to_it(tmp_path,
                                                                                 prefix):
    from broker.address import BrokerAddress
    from broker.client import Node
    from broker.mosquitto import MosquittoBroker

    first = MosquittoBroker(data_dir=tmp_path / "b").start()
    address = BrokerAddress(port=first.port)
    got: list[bytes] = []
    node = Node("n", address, subscriptions=[(f"{prefix}/x", 1)],
                handler=lambda t, p: got.append(p))
    ticks = []
    node.every(0.05, lambda: ticks.append(1))
    node.connect(timeout=5)
    second = MosquittoBroker(port=first.port, data_dir=tmp_path / "b")
    try:
        first.stop()
        wait_until(lambda: node.backoff.down, 10, node.poll, "the node to see the loss")
        before = len(ticks)
        wait_until(lambda: len(ticks) >= before + 5, 5, node.poll, "timers while down")
        assert node.backoff.down and node.connections == 1
        second.start()
        wait_until(lambda: node.connections == 2 and node.connected, 15, node.poll,
                   "the node back on the broker")
        sender = Recorder(address)

        def send_and_turn() -> None:  # sent until one arrives: the SUBSCRIBE may still be on
            sender.publish(f"{prefix}/x", b"again")  # its way when the first is
            sender.poll()
            node.poll()

        wait_until(lambda: b"again" in got, 10, send_and_turn,
                   "a message through the new connection's subscription")
        sender.close()
    finally:
        node.close(flush_timeout=1)
        first.stop()
        second.stop()


@pytest.mark.timeout(120)
def test_sigterm_stops_a_benchmark_with_its_broker_and_files(tmp_path):
    """A command without a service loop (here `bench`) unwinds on SIGTERM as on Ctrl-C: the
    broker it started is stopped, its data dir removed, one line, exit 130 (before, the
    default action killed it: exit -15 and the broker's files left in /tmp)."""
    bench = subprocess.Popen([*FLEETLEARN, "bench", "--scenario", "ingest", "--ingest-n",
                              "5000000", "--repeats", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    try:
        def brokers() -> list[int]:
            return [p for p in children_of(bench.pid) if "mosquitto" in cmdline(p)]

        wait_until(lambda: bench.poll() is not None or brokers(), 60, tick,
                   "the benchmark's broker")
        broker = brokers()
        assert broker, bench.stderr.read()
        conf = cmdline(broker[0]).split(" -c ")[1].split()[0]
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=30) == 130
        assert bench.stderr.read().strip() == "fleetlearn: interrupted"
        assert not process_alive(broker[0])
        assert not Path(conf).parent.exists()
    finally:
        ended(bench)
