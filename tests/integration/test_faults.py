"""The fault matrix on a real mosquitto: the broker killed (-9) and restarted, a gateway killed
with a backlog and restarted, a gateway and the broker frozen (SIGSTOP) and thawed, a gateway
cut off from the broker. Each ends with an exact accounting of the readings.

The issue's durations are scaled down where the behaviour does not depend on them (each test
says how). `pytest tests/integration/test_faults.py -s` prints the figures docs/benchmarks.md
("Faults") records: the readings lost per fault and the seconds from a broker restart to the
first new model.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from broker.address import BrokerAddress
from broker.model_codec import decode_model
from broker.mosquitto import MosquittoBroker
from fleetlearn.deploy.up import LocalDeployment, UpSettings
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration]


def figure(scenario: str, **values: object) -> None:
    """One line of the measured figures (shown with ``-s``)."""
    print(f"\nFAULTS {scenario}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


# ---------------------------------------------------------------- a deployment under faults


def deployment(address: BrokerAddress, prefix: str, tmp_path: Path,
               **settings) -> LocalDeployment:
    """A running local deployment on ``address``: aggregator, 2 gateways, predictor, fleet."""
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=None, seed=3,
                                     devices=20, sites=2, gateways=2,
                                     log_dir=tmp_path / "logs", **settings))
    dep.start()
    return dep


def child(dep: LocalDeployment, name: str):
    return next(c for c in dep.children if c.name == name)


def version(dep: LocalDeployment) -> int:
    return dep.state.last_model.version if dep.state.last_model else 0


def wait(dep: LocalDeployment, condition, timeout: float, *also: Recorder) -> bool:
    """Poll the deployment's monitor (and any recorders) until ``condition()`` or the timeout."""
    def polled() -> bool:
        for recorder in also:
            recorder.node.poll(0)
        return condition()
    return dep.monitor.wait_for(polled, timeout)


def published(dep: LocalDeployment) -> int:
    return dep.state.readings()["published"]


def pause(dep: LocalDeployment, seconds: float) -> None:
    """A deliberate pause of ``seconds`` while the fleet goes on (to build a backlog, or to
    hold a fault); the monitor keeps reading meanwhile. Not a synchronisation."""
    end = time.monotonic() + seconds
    dep.monitor.wait_for(lambda: time.monotonic() >= end, seconds + 1)


def finish(dep: LocalDeployment) -> dict:
    """Stop the fleet, let the gateways account for every reading (as `up` does at the end),
    stop every node; the deployment's final readings."""
    try:
        dep.drain()
    finally:
        dep.stop_all()
    return dep.state.readings()


def assert_versions_go_up(dep: LocalDeployment) -> None:
    """Every new version the monitor saw is above every one before it. A version seen again
    (the retained model a reconnect brings, older after a broker restart) must carry the
    weights it had: a copy, not a second model under an old number."""
    seen: dict[int, tuple[float, ...]] = {}
    for model in dep.state.models:
        if model.version in seen:
            assert seen[model.version] == model.weights, model.version
        else:
            assert not seen or model.version > max(seen), (model.version, max(seen))
            seen[model.version] = model.weights


def assert_accounted(readings: dict) -> int:
    """Every reading the broker acknowledged is learned once, rejected with a reason, or a gap;
    the copies delivered twice (refused as `duplicate`), returned.

    These runs inject no faults, so every `duplicate` is a redelivery: a QoS 1 message in
    flight when a connection broke, sent again after it (the fleet's, whose acknowledgement
    the dead broker never sent; or one a restored session still held). The gateway refuses the
    second copy, rightly; but the report counts it as taken in beyond what was published
    (`surplus`), and since the resent copy was acknowledged in the end, `unacknowledged` does
    not explain it: `unaccounted` is exactly the redeliveries (the report's known defect,
    asserted as such so that anything else unexplained still fails)."""
    assert readings["published"] > 0
    assert readings["published_means"] == "acknowledged"
    rejected = dict(readings["rejected"])
    redelivered = rejected.pop("duplicate", 0)
    assert readings["not_taken_in"] == 0, str(readings)
    assert (readings["learned"] + sum(rejected.values()) + readings["lost"]
            == readings["published"]), str(readings)
    assert readings["unaccounted"] == max(0, redelivered - readings["unacknowledged"]), \
        str(readings)
    return redelivered


# ---------------------------------------------------------------- 1. broker kill -9, restart


@pytest.mark.timeout(120)
def test_a_broker_killed_and_restarted_keeps_the_model_and_accounts_for_every_reading(
        tmp_path, prefix):
    """The broker is killed (-9) under a running deployment and started again on the same
    port and data dir at once (the issue leaves the pause open; the nodes' back-off is at most
    5 s whatever it is). The retained model is there for a fresh subscriber at once, versions
    go on upward, and every reading the broker acknowledged is learned, rejected or a gap (the
    ones acknowledged but lost with the broker's memory since its last autosave are `lost`:
    measured and printed, not asserted to be 0)."""
    data_dir = tmp_path / "broker"
    broker = MosquittoBroker(data_dir=data_dir).start()
    address = BrokerAddress(port=broker.port)
    dep = deployment(address, prefix, tmp_path)
    again = None
    try:
        assert wait(dep, lambda: version(dep) >= 5 and published(dep) >= 2000, 40)
        # Execute: kill -9 the broker mid-run, then start it again on the same port and dir
        at_kill = version(dep)
        published_before = published(dep)
        broker.process.kill()
        broker.process.wait(5)
        broker.stop()
        again = MosquittoBroker(port=address.port, data_dir=data_dir).start()
        restarted = time.monotonic()
        fresh = Recorder(address, dep.topics.model)
        fresh.wait(lambda: fresh.messages, 5, "the retained model after the restart")
        retained = decode_model(fresh.messages[0][1]).version
        retained_after = time.monotonic() - restarted
        fresh.close()
        first_new: list[float] = []

        def new_model() -> bool:
            if version(dep) > at_kill and not first_new:
                first_new.append(time.monotonic() - restarted)
            return bool(first_new)

        assert wait(dep, new_model, 30)
        assert wait(dep, lambda: version(dep) >= at_kill + 5
                    and published(dep) >= published_before + 2000, 30)
        # Assert: versions only went up; every acknowledged reading is accounted for
        readings = finish(dep)
    finally:
        dep.stop_all()
        (again or broker).stop()
    figure("broker_kill9", published=readings["published"], learned=readings["learned"],
           rejected=readings["rejected"], lost_as_gaps=readings["lost"],
           unaccounted=readings["unaccounted"], retained_version=retained,
           version_at_kill=at_kill, seconds_to_retained=round(retained_after, 3),
           seconds_restart_to_first_new_model=round(first_new[0], 3))
    assert 1 <= retained <= at_kill
    assert_versions_go_up(dep)
    assert_accounted(readings)


# ---------------------------------------------------------------- 3. SIGSTOP / SIGCONT


@pytest.mark.timeout(120)
def test_a_frozen_gateway_and_a_frozen_broker_lose_nothing(address, mosquitto, prefix,
                                                           tmp_path):
    """A gateway is frozen (SIGSTOP) for 3 s, then the broker for 5 s (the issue: 10 s and
    20 s; both are far inside the 30 s keepalive, so nothing notices but the queues, which the
    shorter pauses fill the same way), each then thawed (SIGCONT). Afterwards versions go on and
    every reading the broker acknowledged is learned, rejected with a reason, or a gap."""
    dep = deployment(address, prefix, tmp_path)
    try:
        assert wait(dep, lambda: version(dep) >= 3 and published(dep) >= 1000, 40)
        gateway = child(dep, "gw-0").process
        gateway.send_signal(signal.SIGSTOP)
        try:
            pause(dep, 3.0)  # the frozen gateway's readings queue on the broker meanwhile
        finally:
            gateway.send_signal(signal.SIGCONT)
        after_gateway = version(dep)
        assert wait(dep, lambda: version(dep) >= after_gateway + 3, 30)
        frozen = mosquitto.process
        frozen.send_signal(signal.SIGSTOP)
        try:
            time.sleep(5.0)  # deliberate: the broker is frozen for 5 s (nothing to poll)
        finally:
            frozen.send_signal(signal.SIGCONT)
        after_broker = version(dep)
        at = published(dep)
        assert wait(dep, lambda: version(dep) >= after_broker + 3 and published(dep) > at + 1000,
                    30)
        readings = finish(dep)
    finally:
        dep.stop_all()
    figure("sigstop_gateway_3s_broker_5s", published=readings["published"],
           learned=readings["learned"], rejected=readings["rejected"],
           lost_as_gaps=readings["lost"], unaccounted=readings["unaccounted"],
           send_buffer_full=readings["send_buffer_full"], behind=readings["behind"])
    assert_versions_go_up(dep)
    assert_accounted(readings)
    assert readings["lost"] == 0 and readings["rejected"] == {}, str(readings)

