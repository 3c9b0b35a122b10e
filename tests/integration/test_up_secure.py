"""`fleetlearn up --secure` against the real Mosquitto it starts itself: the secured deployment
learns as the plain one does, every node logs in as itself over TLS, and outsiders (an anonymous
client, the monitor's or a device's credential, even the aggregator's stolen password without
its signing key) cannot change the model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from broker.messages import LinearParams, Model
from broker.model_codec import encode_model
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.up import LocalDeployment
from tests.cli_clients import login, publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NODES = ("aggregator", "gw-0", "gw-1", "predictor", "fleet", "monitor")


def test_up_secure_learns_as_the_plain_one_and_says_it_is_secured(tmp_path):
    # Execute: a secured deployment from one flag
    report_path, logs, secure = tmp_path / "report.json", tmp_path / "logs", tmp_path / "secure"
    done = subprocess.run([
        sys.executable, "-m", "fleetlearn", "up", "--secure", "--secure-dir", str(secure),
        "--duration", "8", "--devices", "20", "--lr", "0.1", "--quiet",
        "--report", str(report_path), "--log-dir", str(logs),
    ], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    # Assert: it learned as the plain one does (tests/integration/test_pipeline.py)
    report = json.loads(report_path.read_text())
    readings, model = report["readings"], report["model"]
    assert readings["published"] > 1000
    assert readings["learned"] == readings["published"] and readings["unaccounted"] == 0
    assert model["strictly_increasing"] and model["last_version"] >= 5
    assert model["weight_error"] < 0.05
    # the report and the summary say it was secured, and where its files are
    assert report["secure"] is True
    assert report["secure_files"]["ca"] == str(secure / "ca.crt")
    assert report["secure_files"]["trust"] == str(secure / "keys" / "trust.toml")
    assert report["broker"].startswith("mqtts://127.0.0.1:")
    assert "secured" in done.stdout
    # the gateways' personal parts (#15.1), signed with their keys, reach the predictor
    assert report["predictor"]["personal_parts"] >= 1
    assert not report["predictor"]["models_refused"], report["predictor"]["models_refused"]
    # every node logged in to the broker as itself, and spoke TLS
    broker_log = (logs / "broker" / "mosquitto.log").read_text()
    for user in NODES:
        assert f"u'{user}'" in broker_log, user
    for node in ("aggregator", "gw-0", "gw-1", "predictor", "fleet"):
        assert "connected to mqtts://127.0.0.1:" in (logs / f"{node}.log").read_text(), node


def forged(model: Model, version: int) -> str:
    """A valid, unsigned model: the real one's task, a higher version, ruinous weights."""
    params = LinearParams(model.params.features, np.full(len(model.params.features), 1e6), 0.0)
    return encode_model(Model(version, time.time(), 10**6, ("gw-0",), model.target, params,
                              model.scaler, model.kind)).decode()


def test_a_secured_up_keeps_outsiders_and_forged_models_out(prefix, tmp_path):
    dep = LocalDeployment(UpSettings(prefix=prefix, duration=None, secure=True,
                                     secure_dir=tmp_path / "secure", log_dir=tmp_path / "logs"))
    try:
        dep.start()
        assert dep.monitor.wait_for(lambda: dep.state.last_model is not None
                                    and dep.state.last_model.version >= 2, timeout=30)
        files, port, t = dep.secured.files, dep.own_broker.port, dep.topics
        passwords = [u["password"] for u in files.users().values()]
        # each node: its own user in its environment, no password on its command line
        for child in dep.children:
            env = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
            assert f"FLEETLEARN_USERNAME={child.name}".encode() in env
            assert not any(p in " ".join(child.argv) for p in passwords)
            assert ("--tls-ca" in child.argv and "--trust" in child.argv) or child.name == "fleet"
        # Execute and assert: an anonymous client is refused
        anonymous = publish(login(port, files, None), t.model, "x")
        assert anonymous.returncode != 0 and "Not authorized" in anonymous.stderr
        # the monitor and a device may not write the model: the broker refuses the publish
        attack = forged(dep.state.last_model, 10**6)
        device = next(u for u, v in files.users().items() if v["role"] == "device")
        for user in ("monitor", device):
            assert "not authorized" in publish(login(port, files, user), t.model,
                                               attack).stderr.lower(), user
        # with the aggregator's password but not its key, the broker lets it through and
        # the gateways and the predictor refuse it: unsigned, counted and dead-lettered
        assert publish(login(port, files, "aggregator"), t.model, attack).returncode == 0
        assert dep.monitor.wait_for(
            lambda: dep.state.deadletters.get("model_unsigned", 0) >= 3, timeout=20)
        # and the fleet learns on: a newer real model, which the gateways adopt
        before = dep.state.nodes["aggregator"]["model_version"]
        assert dep.monitor.wait_for(
            lambda: all(dep.state.nodes.get(g, {}).get("model_version", 0) > before
                        for g in ("gw-0", "gw-1")), timeout=30)
        assert all(dep.state.nodes[g]["model_version"] < 10**6 for g in ("gw-0", "gw-1"))
        # up's own monitor refused it too: the report's model history is the aggregator's
        assert dep.state.ignored["model_unsigned"] >= 1
        assert all(m.version < 10**6 for m in dep.state.models)
    finally:
        dep.stop_all()
    assert all(not c.running for c in dep.children)
