"""Smoke runs of every broker benchmark at tiny sizes: the command keeps working and each row
says what it must. No timing assertions (figures drift on shared machines)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.serial, pytest.mark.timeout(180)]


def bench(tmp_path, *args: str) -> tuple[list[dict], str]:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "bench", *args, "--json",
                           str(out), "--markdown", str(md)], capture_output=True, text=True,
                          timeout=170, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), md.read_text()


def test_ingest_measures_gateway_and_raw_in_every_mode(tmp_path):
    rows, md = bench(tmp_path, "--scenario", "ingest", "--ingest-n", "300", "--batch-n", "600",
                     "--repeats", "1")
    assert [r["stream"] for r in rows] == [
        "QoS 0, 1 per message", "QoS 1, 1 per message",
        "QoS 0, 20 per message in columns", "QoS 1, 20 per message in columns",
        "QoS 0, 20 per message in rows", "QoS 1, 20 per message in rows"]
    for r in rows:
        assert r["per_s"] > 0 and r["baseline_per_s"] > 0 and r["ratio"] > 0
        assert r["learned"] == r["readings"]  # a clean stream: every reading learned
    assert "**ingest**" in md and "| stream |" in md


def test_sync_reports_percentiles_per_number_of_learners(tmp_path):
    rows, _ = bench(tmp_path, "--scenario", "sync", "--learners", "2,3", "--rounds", "4")
    assert [r["stream"] for r in rows] == ["2 learners, quorum 2", "3 learners, quorum 3"]
    for r in rows:
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] and r["rounds"] == 4


def test_scale_compares_two_gateways_and_grows_devices(tmp_path):
    rows, _ = bench(tmp_path, "--scenario", "scale", "--scale-n", "800", "--devices", "10,30",
                    "--repeats", "1")
    assert [r["stream"] for r in rows] == ["2 gateways (sites s0, s1) vs 1, QoS 1",
                                           "2 gateways (sites s0, s1) vs 1, QoS 0",
                                           "10 devices, 1 gateway", "30 devices, 1 gateway"]
    assert all(r["per_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert all(r["rss_mib"] > 0 for r in rows[2:])


def test_memory_reads_every_nodes_rss_and_a_soak_slope(tmp_path):
    rows, _ = bench(tmp_path, "--scenario", "memory", "--memory-n", "2000", "--soak", "3")
    after = {r["stream"].split(" ")[0] for r in rows if "after" in r["stream"]}
    assert after >= {"aggregator", "fleet", "gw-0", "gw-1", "predictor", "mosquitto"}
    assert all(r["rss_mib"] > 0 and r["baseline_mib"] > 0 for r in rows if "after" in r["stream"])
    soaked = [r for r in rows if "soak" in r["stream"]]
    assert soaked and all(isinstance(r["slope_mb_per_h"], float) for r in soaked)


def test_security_answers_every_goal_plain_against_tls_and_signatures_in_one_run(tmp_path):
    rows, md = bench(tmp_path, "--scenario", "security", "--ingest-n", "300", "--batch-n",
                     "600", "--repeats", "1", "--security-learners", "2", "--rounds", "3",
                     "--signing-n", "20")
    assert [(r["scenario"], r["stream"]) for r in rows] == [
        ("security: ingest", "ingest, QoS 1, 1 per message: TLS"),
        ("security: ingest", "ingest, QoS 1, 20 per message: TLS"),
        ("security: sync", "sync, 2 learners: TLS"),
        ("security: sync", "sync, 2 learners: TLS + signatures"),
        ("security: signature", "model of 3 features"),
        ("security: signature", "model of 64 features")]
    for r in rows[:2]:
        assert r["per_s"] > 0 and r["baseline_per_s"] > 0 and r["ratio"] > 0
        assert r["cpu_us"] > 0 and r["baseline_cpu_us"] > 0 and r["cpu_ratio"] > 0
    for r in rows[2:4]:  # the signed rounds closed: every update and model was verified
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["baseline_p99_ms"] > 0 and r["ratio"] > 0
    for r in rows[4:]:
        assert r["verify_us"] > 0 and r["adopt_us"] > 0 and r["signed_adopt_us"] > 0
    assert all(r["goal"] in ("met", "not met") for r in rows)
    assert "**security: sync**" in md and "TLS + signatures" in md


def test_bench_refuses_bad_learner_counts():
    done = subprocess.run([sys.executable, "-m", "fleetlearn", "bench", "--scenario", "sync",
                           "--learners", "2,x"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--learners" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_serving_measures_predictor_against_gateway_and_its_latency(tmp_path):
    rows, md = bench(tmp_path, "--scenario", "serving", "--ingest-n", "400", "--batch-n", "800",
                     "--repeats", "1", "--latency-seconds", "1")
    throughput, latency = rows[:4], rows[4:]
    assert [r["stream"] for r in throughput] == [
        "QoS 0, 1 per message", "QoS 1, 1 per message", "QoS 0, 20 per message",
        "QoS 1, 20 per message"]
    for r in throughput:
        assert r["per_s"] > 0 and r["baseline_per_s"] > 0 and r["ratio"] > 0
        # a clean stream, a task without lags: all learned, all predicted, one prediction
        # message per message in
        assert r["learned"] == r["predictions"] == r["readings"]
        assert r["prediction_messages"] == r["readings"] // int(r["stream"].split(", ")[1][:2])
    assert [r["stream"].split(",")[:2] for r in latency] == [["latency", " QoS 0"],
                                                             ["latency", " QoS 1"]]
    for r in latency:
        assert r["predictions"] == r["predicted"] == r["sent"] > 0
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    assert "**serving**" in md


@pytest.mark.timeout(170)
def test_topology_counts_the_core_flat_against_bridged_and_times_a_healed_site(tmp_path):
    """Short windows (3 s each, a 2 s cut): the rows say what they must, bridged + hierarchical
    puts fewer messages into the core than flat, and the cut site is back in a global model."""
    rows, md = bench(tmp_path, "--scenario", "topology", "--topology-seconds", "3",
                     "--partition-seconds", "2")
    traffic, heal = rows
    assert traffic["scenario"] == heal["scenario"] == "topology"
    assert 0 < traffic["messages_per_s"] < traffic["baseline_messages_per_s"]
    assert 0 < traffic["bytes_per_s"] < traffic["baseline_bytes_per_s"]
    assert traffic["times_fewer"] > 1 and 0 < traffic["ratio"] < 1
    # (the bridged run's gateways report through the bridges: after 3 s, maybe not yet)
    assert traffic["baseline_learned"] > 0 and traffic["learned"] >= 0
    assert {"weight_error", "baseline_weight_error"} <= set(traffic)
    assert heal["partition_s"] >= 2 and heal["heal_s"] > 0 and heal["reconnect_s"] > 0
    assert heal["bridge_down_s"] >= 0
    assert all(r["goal"] in ("met", "not met") for r in rows)
    assert "**topology**" in md
