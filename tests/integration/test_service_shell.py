"""The service shell (broker/service.py) against a real mosquitto: metrics on the interval with
the service's counters, dead letters with their reason, status, and stop()/SIGTERM ending run()."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from itertools import pairwise

import orjson
import pytest

from broker.address import BrokerAddress
from broker.service import Service
from broker.topics import Topics
from tests.mqtt_helpers import Recorder, ServiceThread

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


class Probe(Service):
    """A service with one subscription: ``refuse`` is dead-lettered, ``boom`` raises."""

    kind = "probe"

    def __init__(self, topics: Topics, broker: BrokerAddress, interval: float = 0.1) -> None:
        self.handled = 0
        self.ticks = 0
        self.looping = threading.Event()  # set from the node's loop: run() is past its set-up
        super().__init__("probe-1", topics, broker, metrics_interval=interval,
                         subscriptions=[(f"{topics.prefix}/in", 1)],
                         tasks=[(interval, self.tick), (0.01, self.looping.set)])

    def tick(self) -> None:
        self.ticks += 1

    def handle(self, topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise ValueError("no good")
        if payload.startswith(b"refuse"):
            self.dead_letter(topic, payload, "refused", "asked to be")
            return
        self.handled += 1

    def handle_error(self, topic: str, payload: bytes, exc: BaseException) -> None:
        self.dead_letter(topic, payload, "internal_error", repr(exc))

    def counters(self) -> dict:
        return {"handled": self.handled, "ticks": self.ticks}


def metrics_of(recorder: Recorder) -> list[dict]:
    return [orjson.loads(p) for p in recorder.on("/metrics/probe-1")]


def test_metrics_go_out_every_interval_with_the_service_counters(address, prefix):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.metrics_filter)
    with ServiceThread(Probe(topics, address, interval=0.1)):
        for _ in range(3):
            recorder.publish(f"{prefix}/in", b"ok")
        recorder.wait(lambda: len(metrics_of(recorder)) >= 4
                      and metrics_of(recorder)[-1]["handled"] == 3,
                      what="metrics that count the three messages")
    sent = metrics_of(recorder)
    assert all(list(m)[:3] == ["node", "kind", "ts"] for m in sent)
    assert {(m["node"], m["kind"]) for m in sent} == {("probe-1", "probe")}
    # The task registered with the same interval runs before the metrics in a turn: every
    # message already counts the tick of its turn.
    assert [m["ticks"] for m in sent[:3]] == [1, 2, 3]
    # The timer's interval between messages (leaving out the last: it may be the one on stop).
    gaps = [b["ts"] - a["ts"] for a, b in pairwise(sent[:-1])]
    assert len(gaps) >= 2 and min(gaps) >= 0.09
    recorder.close()


def test_dead_letters_carry_the_reason_the_topic_and_an_excerpt(address, prefix):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.deadletter_filter)
    with ServiceThread(Probe(topics, address)) as probe:
        recorder.publish(f"{prefix}/in", b"refuse this one")
        recorder.publish(f"{prefix}/in", b"boom")
        recorder.publish(f"{prefix}/in", b"fine")
        recorder.wait(lambda: len(recorder.on("/deadletter/probe-1")) >= 2, what="dead letters")
        recorder.wait(lambda: probe.handled == 1, what="the loop to carry on after an error")
    letters = [orjson.loads(p) for p in recorder.on("/deadletter/probe-1")]
    assert [(d["reason"], d["detail"], d["excerpt"]) for d in letters] == [
        ("refused", "asked to be", "refuse this one"),
        ("internal_error", "ValueError('no good')", "boom"),
    ]
    assert all(d["node"] == "probe-1" and d["topic"] == f"{prefix}/in" for d in letters)
    assert sorted(letters[0]) == ["detail", "excerpt", "node", "reason", "topic", "ts"]
    assert probe.node.handler_errors == 1
    recorder.close()


def _run_until(probe: Probe, end: Callable[[], None]) -> float:
    """Run ``probe.run()`` here (the main thread: it installs signal handlers); once it is
    looping, ``end()`` from another thread. Seconds from ``end()`` to run()'s return."""
    asked: list[float] = []

    def ender() -> None:
        if probe.looping.wait(10):
            asked.append(time.monotonic())
            end()

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=ender, daemon=True)
    thread.start()
    try:
        probe.run()
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    thread.join(5)
    assert asked, "the service never looped"
    return time.monotonic() - asked[0]


@pytest.mark.parametrize("how", ["stop", "sigterm"])
def test_stop_or_sigterm_ends_run_promptly_and_cleanly(address, prefix, how):
    topics = Topics(prefix)
    recorder = Recorder(address, topics.node_status("probe-1"), topics.metrics_filter)
    probe = Probe(topics, address, interval=60.0)  # no metrics but the final ones
    defaulted: list[bool] = []
    if how == "stop":
        took = _run_until(probe, probe.stop)
    else:
        def sigterm() -> None:
            # Only once run() has put its handler in place: the default one would end pytest.
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                defaulted.append(True)
                probe.stop()
            else:
                os.kill(os.getpid(), signal.SIGTERM)

        took = _run_until(probe, sigterm)
    assert not defaulted, "run() left SIGTERM's default action in place"
    assert took < 2.0
    recorder.wait(lambda: recorder.on("/status/probe-1")[-1:] == [b"offline"]
                  and metrics_of(recorder), what="offline and the final metrics")
    assert recorder.on("/status/probe-1") == [b"online", b"offline"]
    assert [m["kind"] for m in metrics_of(recorder)] == ["probe"]
    recorder.close()
