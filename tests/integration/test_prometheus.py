"""Prometheus metrics from live processes against a real mosquitto: a whole deployment's
endpoint scraped while it runs and at the end (its counts equal the run's report), `up
--metrics-port` from the command line, and a single node's `--metrics-port`."""

import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from broker.mosquitto import free_port
from broker.topics import Topics
from fleetlearn.deploy.up import LocalDeployment, UpSettings
from fleetlearn.metrics.catalogue import sample_names
from fleetlearn.metrics.exporter import deployment_exporter
from fleetlearn.metrics.settings import ExporterConfig
from tests.mqtt_helpers import Recorder, wait_until

pytestmark = pytest.mark.integration


def scrape(url: str) -> str:
    """The endpoint's text; "" while nothing listens there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return ""


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """{sample name: [(labels, value)]}, with prometheus_client's own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(found: dict, name: str, **match: str) -> float:
    return sum(v for labels, v in found.get(name, [])
               if all(labels.get(k) == w for k, w in match.items()))


def by(found: dict, name: str, label: str, **match: str) -> dict[str, float]:
    out: Counter[str] = Counter()
    for labels, v in found.get(name, []):
        if all(labels.get(k) == w for k, w in match.items()):
            out[labels[label]] += v
    return dict(out)


@pytest.mark.timeout(240)
def test_a_deployments_metrics_are_served_while_it_runs_and_equal_its_report(
        mosquitto, address, prefix, tmp_path):
    # Prepare: a deployment on our broker, its endpoint on a free port, scraped all along
    dep = LocalDeployment(UpSettings(broker=address, prefix=prefix, duration=5, seed=7,
                                     devices=12, sites=2, gateways=2, rate=400,
                                     faults="malformed=0.02,duplicate=0.02,lost=0.01",
                                     log_dir=tmp_path / "logs"))
    server = deployment_exporter(dep.state, ExporterConfig(port=free_port()))
    learned_seen: list[float] = []
    done = threading.Event()

    def scrape_while_it_runs() -> None:
        while not done.wait(0.2):  # a scrape interval, not a synchronisation
            if text := scrape(server.url):
                learned_seen.append(total(parse(text), "fleetlearn_readings_total",
                                          outcome="learned"))

    scraper = threading.Thread(target=scrape_while_it_runs, daemon=True)
    scraper.start()
    # Execute: the run, to its end (`up --report` writes what run() returns)
    try:
        report = dep.run()
    finally:
        done.set()
        scraper.join(10)
    try:
        text = scrape(server.url)
    finally:
        server.close()
    found = parse(text)

    # Assert: it served while the readings came in, and its counters never went down
    assert any(v > 0 for v in learned_seen), learned_seen
    assert learned_seen == sorted(learned_seen)
    # every sample is one the exporter defines
    assert set(found) <= sample_names()
    # the counts at the end are the report's
    readings = report["readings"]
    assert readings["learned"] > 500 and readings["rejected"] and readings["gaps"] > 0
    assert report["deadletters"]
    assert total(found, "fleetlearn_readings_published_total") == readings["published"]
    assert total(found, "fleetlearn_readings_total", outcome="learned") == readings["learned"]
    assert by(found, "fleetlearn_readings_total", "reason", outcome="rejected") == \
        readings["rejected"]
    assert total(found, "fleetlearn_reading_gaps_total") == readings["gaps"]
    assert total(found, "fleetlearn_readings_backlog") == readings["not_taken_in"]
    assert total(found, "fleetlearn_predictions_total") == report["predictions"] > 0
    assert by(found, "fleetlearn_deadletters_total", "reason") == report["deadletters"]
    assert total(found, "fleetlearn_models_seen_total") == report["model"]["versions_seen"]
    assert total(found, "fleetlearn_model_version", node="aggregator") == \
        report["model"]["last_version"]
    for gateway, prequential in report["prequential"].items():
        assert total(found, "fleetlearn_prequential_r2", gateway=gateway) == prequential["r2"]
        # its updates came back in models it adopted: the sync latency was measured
        synced = total(found, "fleetlearn_sync_latency_seconds_count", gateway=gateway)
        assert 0 < synced <= min(total(found, "fleetlearn_updates_sent_total", gateway=gateway),
                                 total(found, "fleetlearn_models_adopted_total", gateway=gateway))
    # every prediction's latency is in the histogram
    assert total(found, "fleetlearn_prediction_latency_seconds_count") == report["predictions"]
    assert total(found, "fleetlearn_resident_memory_bytes", node="predictor") > 2**20


@pytest.mark.timeout(240)
def test_up_serves_its_metrics_port_while_it_runs_and_frees_it_at_the_end(
        mosquitto, address, prefix, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    pacer = Recorder(address, f"{prefix}/learn/model")  # its network turns pace the polling
    up = subprocess.Popen([
        sys.executable, "-m", "fleetlearn", "up", "--broker", f"127.0.0.1:{mosquitto.port}",
        "--prefix", prefix, "--duration", "4", "--gateways", "1", "--quiet",
        "--metrics-port", str(port), "--report", str(tmp_path / "report.json"),
        "--log-dir", str(tmp_path / "logs")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen: dict = {}

        def learning() -> bool:
            seen.update(parse(scrape(url)))
            return total(seen, "fleetlearn_readings_total", outcome="learned") > 0
        wait_until(lambda: learning() or up.poll() is not None, 180, pacer.poll,
                   "up's endpoint to show readings learned")
        assert total(seen, "fleetlearn_node_online", node="gw-0") == 1
        out = up.communicate(timeout=120)[0].decode()
    finally:
        pacer.close()
        if up.poll() is None:
            up.kill()
            up.wait(10)
    assert up.returncode == 0, out
    assert scrape(url) == ""  # closed with the run: the port is free again


@pytest.mark.timeout(90)
def test_a_single_nodes_metrics_port_serves_its_own_counts(mosquitto, address, prefix,
                                                           tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    recorder = Recorder(address, f"{prefix}/deadletter/+")
    aggregator = subprocess.Popen([
        sys.executable, "-m", "fleetlearn", "aggregator", "--broker",
        f"127.0.0.1:{mosquitto.port}", "--prefix", prefix, "--metrics-interval", "0.1",
        "--state-dir", str(tmp_path / "state"), "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "10"})
    try:
        found: dict = {}

        def reported() -> bool:
            found.update(parse(scrape(url)))
            return "fleetlearn_models_broadcast_total" in found
        wait_until(reported, 60, recorder.poll, "the aggregator's first metrics")
        assert total(found, "fleetlearn_updates_refused_total") == 0
        # an update it must refuse: counted on its endpoint, by reason
        recorder.publish(Topics(prefix).update("gw-9"), b"not json")
        recorder.wait(lambda: recorder.on("/deadletter/"), 20, "the refusal's dead letter")

        def refused() -> bool:
            found.update(parse(scrape(url)))
            return total(found, "fleetlearn_updates_refused_total") == 1
        wait_until(refused, 20, recorder.poll, "the refusal on /metrics")
        assert set(by(found, "fleetlearn_updates_refused_total", "reason")) == {"malformed"}
        assert total(found, "fleetlearn_resident_memory_bytes", node="aggregator") > 2**20
        assert set(found) <= sample_names()
    finally:
        recorder.close()
        aggregator.send_signal(signal.SIGTERM)
        out = aggregator.communicate(timeout=20)[0].decode()
    assert aggregator.returncode == 0, out
    assert scrape(url) == ""


@pytest.mark.timeout(60)
def test_a_taken_metrics_port_is_one_line_and_exit_code_2():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "fleetlearn", "aggregator", "--broker",
                               f"127.0.0.1:{free_port()}", "--no-checkpoints",
                               "--metrics-port", str(port)],
                              capture_output=True, text=True, timeout=50)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and f"port {port}" in done.stderr
