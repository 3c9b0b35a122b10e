"""Every node speaks TLS and credentials (issue #13, point 2), against a real mosquitto with a
TLS listener and a password file: a login that works goes end to end; a wrong password, a
missing or wrong CA, each gives one line on stderr and exit code 1, once (no retry storm)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from fleetlearn.bench.tls import TlsMosquitto, make_pki
from tests.conftest import TLS_PASSWORD, TLS_USER
from tests.mqtt_helpers import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: A connect timeout far above what a refusal takes: a node that retried a refusal until it
#: gave up would outlast the subprocess timeout of these tests and fail them.
PATIENT = {"FLEETLEARN_CONNECT_TIMEOUT": "60"}

#: Every command that connects, with what it needs to run.
COMMANDS = {
    "aggregator": ["aggregator"],
    "gateway": ["gateway", "--id", "gw-0"],
    "predict": ["predict"],
    "devices simulate": ["devices", "simulate", "--devices", "2"],
    "up": ["up", "--duration", "3", "--quiet"],
}


def fleetlearn(*args: str, env: dict[str, str] | None = None, timeout: float = 40,
               ) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLEARN_")}
    return subprocess.run([sys.executable, "-m", "fleetlearn", *args], capture_output=True,
                          text=True, timeout=timeout, env={**clean, **(env or {})})


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("fleetlearn: error: ")
    return done.stderr


def tls_args(broker: TlsMosquitto, ca: Path | None = None) -> list[str]:
    return ["--broker", f"mqtts://127.0.0.1:{broker.tls_port}",
            "--tls-ca", str(ca or broker.pki.ca)]


@pytest.mark.parametrize("command", list(COMMANDS), ids=str)
def test_a_wrong_password_is_one_line_and_exit_1_for_every_command(tls_broker, prefix,
                                                                   command):
    done = fleetlearn(*COMMANDS[command], *tls_args(tls_broker), "--prefix", prefix,
                      "--username", TLS_USER, "--password", "wrong", env=PATIENT)
    line = one_error_line(done)
    assert "refused the connection" in line and "--password" in line
    assert "wrong" not in line  # the password is never shown


@pytest.mark.parametrize("command", ["aggregator", "up"])
def test_no_login_at_all_says_the_broker_wants_a_user(tls_broker, prefix, command):
    done = fleetlearn(*COMMANDS[command], *tls_args(tls_broker), "--prefix", prefix,
                      env=PATIENT)
    assert "--username" in one_error_line(done)


@pytest.mark.parametrize("command", ["gateway", "up"])
def test_a_client_without_the_ca_or_with_another_is_one_line_and_exit_1(tls_broker, prefix,
                                                                        tmp_path, command):
    other = make_pki(tmp_path)  # a CA that did not sign the broker's certificate
    login = ["--username", TLS_USER, "--prefix", prefix]
    without = fleetlearn(*COMMANDS[command], "--broker",
                         f"mqtts://127.0.0.1:{tls_broker.tls_port}", *login, env={
                             **PATIENT, "FLEETLEARN_PASSWORD": TLS_PASSWORD})
    wrong = fleetlearn(*COMMANDS[command], *tls_args(tls_broker, other.ca), *login, env={
        **PATIENT, "FLEETLEARN_PASSWORD": TLS_PASSWORD})
    for done in (without, wrong):
        line = one_error_line(done)
        assert "certificate verify failed" in line and "--tls-ca" in line


def test_a_node_over_tls_with_a_user_runs_and_is_seen_online(tls_broker, prefix):
    # Prepare: a recorder of our own over TLS with the same user
    recorder = Recorder(tls_broker.address(username=TLS_USER, password=TLS_PASSWORD),
                        f"{prefix}/#")
    env = {**os.environ, "FLEETLEARN_PASSWORD": TLS_PASSWORD}
    proc = subprocess.Popen([sys.executable, "-m", "fleetlearn", "aggregator",
                             *tls_args(tls_broker), "--username", TLS_USER, "--prefix", prefix,
                             "--metrics-interval", "0.2"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Act + Assert: it comes online and reports its metrics over TLS
        recorder.wait(lambda: b"online" in recorder.on("/learn/status/aggregator")
                      and recorder.on("/metrics/aggregator"), timeout=30,
                      what="the aggregator online over TLS")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        recorder.close()


@pytest.mark.serial  # a TLS up failed once under a loaded machine
def test_up_over_tls_with_a_password_accounts_for_every_reading(tls_broker, prefix,
                                                                tmp_path):
    # Prepare: the connection in the config file's [broker] (the CA relative to the file),
    # the password in the environment only
    config = tmp_path / "fleetlearn.toml"
    config.write_text(f'[broker]\naddress = "mqtts://127.0.0.1:{tls_broker.tls_port}"\n'
                      f'username = "{TLS_USER}"\n'
                      f'tls_ca = "{os.path.relpath(tls_broker.pki.ca, tmp_path)}"\n')
    report, logs = tmp_path / "report.json", tmp_path / "logs"
    # Act
    done = fleetlearn("--config", str(config), "up", "--duration", "3", "--quiet",
                      "--devices", "4", "--rate", "200", "--prefix", prefix,
                      "--report", str(report), "--log-dir", str(logs),
                      env={"FLEETLEARN_PASSWORD": TLS_PASSWORD}, timeout=100)
    # Assert: every reading accounted for, a model made, and the password in no file up wrote
    assert done.returncode == 0, done.stderr
    result = orjson.loads(report.read_bytes())
    assert result["accounted"] and result["readings"]["published"] > 0
    assert (result["model"]["last_version"] or 0) >= 1  # the federation ran over TLS
    written = b"".join(p.read_bytes() for p in logs.rglob("*") if p.is_file())
    assert TLS_PASSWORD.encode() not in written


def test_mutual_tls_needs_the_clients_certificate(tmp_path, prefix):
    with TlsMosquitto(client_certs=True, directory=tmp_path / "mtls") as broker:
        recorder = Recorder(broker.address(cert=str(broker.pki.client_cert),
                                           key=str(broker.pki.client_key)), f"{prefix}/#")
        recorder.close()
        done = fleetlearn("predict", *tls_args(broker), "--prefix", prefix, env=PATIENT)
        assert "TLS" in one_error_line(done)
