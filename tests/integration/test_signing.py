"""Signed models and updates on a plain mosquitto where anyone may publish anything anywhere:
an aggregator, two gateways and a predictor with keys; forgers publish straight to the broker.
Forged and replayed models and updates are refused, counted and dead-lettered, and the fleet
learns on; the aggregator's key is rotated mid-run without a gap in versions."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from broker.keyring import Keyring, read_trust, write_private, write_trust
from broker.messages import LinearParams, Model, Reading, Scaler, Update
from broker.model_codec import decode_model, encode_model, encode_update
from broker.reading_codec import encode_reading
from broker.signing import PrivateKey, SignatureRefused, TrustedKey, TrustSet, sign, verify
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from gateway.predictor import Predictor, PredictorConfig
from gateway.service import Gateway
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.strategies import SyncRounds
from tests.mqtt_helpers import Recorder, ServiceThread, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SPEC = FeatureSpec(("a", "b"), "y")
SITES = ("s0", "s1")


class Fleet:
    """Keys and a trust file in ``tmp``, the nodes (each its own keyring, as processes have),
    a watcher, and readings fed from the test's loop."""

    def __init__(self, tmp: Path, address, topics: Topics, state_dir: Path | None = None):
        self.tmp, self.address, self.topics = tmp, address, topics
        self.keys = {name: PrivateKey.generate() for name in ("aggregator", "gw-0", "gw-1")}
        write_trust(self.trust, [TrustedKey(k.kid, name, "gateway" if name != "aggregator"
                                            else "aggregator", k.public)
                                 for name, k in self.keys.items()])
        for name, key in self.keys.items():
            write_private(self.key_file(name), key.to_pem())
        self.watcher = Recorder(address, topics.model, topics.deadletter_filter,
                                topics.updates_filter, topics.predictions_filter)
        self.seq = 0
        self.rng = np.random.default_rng(5)
        fed = FederationConfig(SyncRounds(round_timeout=1.0), quorum=2)
        self.aggregator = Aggregator(AggregatorConfig(
            federation=fed, state_dir=state_dir, keyring=self.keyring("aggregator"),
            keys_interval=0.1), topics, address)
        self.gateways = [Gateway(GatewayConfig(
            f"gw-{i}", SPEC, Partition.parse(f"sites:{site}"), sync_every=20,
            sync_interval=0.2, keyring=self.keyring(f"gw-{i}"), keys_interval=0.1),
            topics, address) for i, site in enumerate(SITES)]
        self.predictor = Predictor(PredictorConfig(keyring=Keyring(None, self.trust),
                                                   keys_interval=0.1), topics, address)
        self.threads = [ServiceThread(s) for s in (self.aggregator, *self.gateways,
                                                   self.predictor)]

    @property
    def trust(self) -> Path:
        return self.tmp / "trust.toml"

    def key_file(self, name: str) -> Path:
        return self.tmp / f"{name}.key"

    def keyring(self, name: str) -> Keyring:
        return Keyring(self.key_file(name), self.trust)

    def __enter__(self) -> Fleet:
        for thread in self.threads:
            thread.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in reversed(self.threads):
            thread.__exit__(*exc)
        self.watcher.close()

    def restart_aggregator(self) -> None:
        """Stop the aggregator and start another on the same state dir, with the keyring its
        key and trust files hold now."""
        self.threads[0].__exit__(None, None, None)
        old = self.aggregator
        self.aggregator = Aggregator(dataclasses.replace(
            old.config, keyring=self.keyring("aggregator")), self.topics, self.address)
        self.threads[0] = ServiceThread(self.aggregator)
        self.threads[0].__enter__()

    def feed(self) -> None:
        """A reading for each site's device, then a turn of the watcher's network."""
        self.seq += 1
        for site in SITES:
            a, b = self.rng.normal(size=2)
            values = {"a": float(a), "b": float(b), "y": float(2 * a - b + 1)}
            self.watcher.publish(self.topics.reading(site, f"{site}-d1"), encode_reading(
                Reading(f"{site}-d1", self.seq, time.time(), values)), qos=0)
        self.watcher.node.poll(0.01)

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        wait_until(condition, timeout, self.feed, what)

    def receivers(self) -> list:
        return [*self.gateways, self.predictor]

    def refused(self, node, reason: str) -> int:
        counts = (node.refused if node is self.aggregator else
                  node.refused if node is self.predictor else node.other_rejected)
        return counts.get(reason, 0)

    def models(self) -> list[bytes]:
        return self.watcher.on("/learn/model")

    def letters(self, reason: str) -> set[str]:
        """The nodes that dead-lettered something for ``reason``."""
        found = [orjson.loads(p) for p in self.watcher.on("/deadletter/")]
        return {d["node"] for d in found if d["reason"] == reason}

    def versions_signed_by(self, key: PrivateKey) -> list[int]:
        """The versions of the models on the wire that ``key`` really signed."""
        trust = TrustSet([TrustedKey(key.kid, "aggregator", "aggregator", key.public)])
        found = set()
        for payload in self.models():
            try:
                found.add(decode_model(verify(payload, trust, "model")[0]).version)
            except SignatureRefused:
                continue
        return sorted(found)

    def all_adopted(self, version: int) -> bool:
        return (all(g.local.base_version >= version for g in self.gateways)
                and self.predictor.model is not None and self.predictor.model.version >= version)


def forged_model(real: bytes, version: int) -> bytes:
    """A valid model message: the real one's task with a higher version and ruinous weights."""
    model = decode_model(real)
    params = LinearParams(model.params.features, np.full(len(model.params.features), 1e6), 0.0)
    return encode_model(Model(version, time.time(), 10**6, ("gw-0",), model.target, params,
                              model.scaler, model.kind))


def assert_no_gap(fleet: Fleet, keys: list[PrivateKey]) -> list[int]:
    versions = sorted({v for key in keys for v in fleet.versions_signed_by(key)})
    assert versions == list(range(versions[0], versions[-1] + 1)), versions
    return versions


def test_forged_and_replayed_models_and_updates_are_refused_and_the_fleet_learns_on(
        tmp_path, address, prefix):
    topics = Topics(prefix)
    with Fleet(tmp_path, address, topics) as fleet:
        fleet.wait(lambda: fleet.all_adopted(2), "every receiver on model v2")
        old, real = fleet.models()[0], fleet.models()[-1]
        now = fleet.aggregator.federation.version
        mallory = PrivateKey.generate()
        forgeries = {
            "model_unsigned": forged_model(real, now + 1000),
            "model_unknown_key": sign(forged_model(real, now + 1000), mallory, "model"),
            "model_bad_signature": real.replace(b'"version":%d' % decode_model(real).version,
                                                b'"version":%d' % (now + 1000)),
            "model_wrong_signer": sign(forged_model(real, now + 1000), fleet.keys["gw-0"],
                                       "model"),
            "model_replayed": old,
        }
        for reason, payload in forgeries.items():
            fleet.watcher.publish(topics.model, payload, retain=True)
            fleet.wait(lambda r=reason: all(fleet.refused(n, r) for n in fleet.receivers()),
                       f"{reason} refused by every gateway and the predictor")
        # forged updates in a real gateway's name
        update = Update("gw-0", 2**62, now, 10**6, "y", LinearParams(("a", "b"),
                        np.full(2, 1e6), 0.0), time.time(), Scaler(10**6, np.zeros(3),
                                                                   np.ones(3)))
        fake = encode_update(update)
        for reason, payload in {"unsigned": fake,
                                "unknown_key": sign(fake, mallory, "update"),
                                "wrong_signer": sign(fake, fleet.keys["gw-1"], "update"),
                                "bad_signature": sign(fake, fleet.keys["gw-0"], "update")
                                .replace(b'"n":1000000', b'"n":1000001'),
                                "replayed": fleet.watcher.on("/update/gw-0")[0]}.items():
            fleet.watcher.publish(topics.update("gw-0"), payload)
            fleet.wait(lambda r=reason: fleet.refused(fleet.aggregator, r),
                       f"the forged update refused as {reason}")
        at_attack = fleet.aggregator.federation.version
        fleet.wait(lambda: fleet.all_adopted(at_attack + 2), "two more versions adopted")
        predictions = [orjson.loads(p) for p in fleet.watcher.on("/prediction")]
    for reason in forgeries:
        assert fleet.letters(reason) >= {"gw-0", "gw-1", "predictor"}, reason
    for reason in ("unsigned", "unknown_key", "wrong_signer", "bad_signature", "replayed"):
        assert "aggregator" in fleet.letters(reason), reason
    # the aggregator refused the forged retained models too, and went on from its own
    assert fleet.refused(fleet.aggregator, "model_unsigned") >= 1
    assert fleet.aggregator.federation.version < now + 1000
    assert max(abs(fleet.aggregator.federation.model.params.weights)) < 100
    assert max(g.local.base_version for g in fleet.gateways) < now + 1000
    assert_no_gap(fleet, [fleet.keys["aggregator"]])
    late = [p for p in predictions if p["model_version"] > at_attack]
    assert late and all(p["model_version"] < now + 1000 for p in predictions)
    assert all(abs(p["prediction"]) < 1e3 for p in late)


def test_the_aggregator_refuses_a_retained_model_it_did_not_sign(tmp_path, address, prefix):
    topics = Topics(prefix)
    forger = Recorder(address)
    params = LinearParams(("a", "b"), np.full(2, 1e6), 0.0)
    forger.publish(topics.model, encode_model(Model(10**6, 0.0, 1, ("gw-0",), "y", params,
                                                    Scaler.empty(3))), retain=True)
    forger.node.flush(5)
    forger.close()
    with Fleet(tmp_path, address, topics) as fleet:
        fleet.wait(lambda: fleet.all_adopted(1), "every receiver on model v1")
        assert fleet.refused(fleet.aggregator, "model_unsigned") >= 1
        assert fleet.aggregator.federation.version < 100
    assert "aggregator" in fleet.letters("model_unsigned")


def test_the_aggregators_key_is_rotated_mid_run_without_a_gap(tmp_path, address, prefix):
    topics = Topics(prefix)
    with Fleet(tmp_path, address, topics, state_dir=tmp_path / "state") as fleet:
        old = fleet.keys["aggregator"]
        old_kid = old.kid
        fleet.wait(lambda: fleet.all_adopted(3), "every receiver on model v3")
        # 1. trust the new key (every node re-reads the trust file)
        new = PrivateKey.generate()
        write_trust(fleet.trust, [*read_trust(fleet.trust),
                                  TrustedKey(new.kid, "aggregator", "aggregator", new.public)])
        rings = [n.keys for n in (fleet.aggregator, *fleet.receivers())]
        fleet.wait(lambda: all(new.kid in r.trust.keys for r in rings), "the new key trusted")
        # 2. the aggregator's key file is swapped; it signs with the new key from now on
        staged = tmp_path / "aggregator.key.new"
        write_private(staged, new.to_pem())
        os.replace(staged, fleet.key_file("aggregator"))
        fleet.wait(lambda: len(fleet.versions_signed_by(new)) >= 2
                   and fleet.all_adopted(fleet.versions_signed_by(new)[-1]),
                   "two models signed with the new key adopted everywhere")
        before = fleet.versions_signed_by(old)  # the last of them signed before the swap
        # 3. the old key is revoked: a model it signs is refused
        write_trust(fleet.trust, [k.revoke() if k.kid == old_kid else k
                                  for k in read_trust(fleet.trust)])
        fleet.wait(lambda: all(r.trust.keys[old_kid].revoked for r in rings),
                   "the old key revoked everywhere")
        real = fleet.models()[-1]
        stolen = sign(forged_model(real, fleet.aggregator.federation.version + 1),
                      fleet.keys["aggregator"], "model")
        fleet.watcher.publish(topics.model, stolen, retain=True)
        fleet.wait(lambda: all(fleet.refused(n, "model_revoked_key")
                               for n in fleet.receivers()), "the old key's model refused")
        after = fleet.aggregator.federation.version
        fleet.wait(lambda: fleet.all_adopted(after + 1), "versions going on after it")
        predictions = [orjson.loads(p) for p in fleet.watcher.on("/prediction")]
    rotated = fleet.versions_signed_by(new)
    assert before == list(range(1, before[-1] + 1))
    assert rotated and before[-1] + 1 == rotated[0]  # the hand-over: no gap
    assert rotated == list(range(rotated[0], rotated[-1] + 1)) and rotated[-1] > after
    assert any(p["model_version"] >= rotated[0] for p in predictions)
    assert {"gw-0", "gw-1", "predictor"} <= fleet.letters("model_revoked_key")


def test_the_commands_sign_and_refuse_with_keys_from_the_cli_and_the_config_file(
        tmp_path, address, prefix):
    """`fleetlearn keys init` makes the keys; an aggregator process takes them from the
    [signing] section of its config file: an unsigned update is refused, a gateway's signed one
    is merged into a model the aggregator signed."""
    import signal
    import subprocess
    import sys

    from broker.keyring import read_private

    trust = tmp_path / "trust.toml"

    def fleetlearn(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "fleetlearn", *args], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "FLEETLEARN_CONNECT_TIMEOUT": "5"})

    for node, role in (("aggregator", "aggregator"), ("gw-0", "gateway")):
        made = fleetlearn("keys", "init", "--node", node, "--role", role,
                          "--key", str(tmp_path / f"{node}.key"), "--trust", str(trust))
        assert made.wait(30) == 0, made.stderr.read()
    config = tmp_path / "fleet.toml"
    config.write_text(f'[signing]\nkey = "{tmp_path / "aggregator.key"}"\ntrust = "{trust}"\n')
    topics = Topics(prefix)
    watcher = Recorder(address, topics.model, topics.deadletter_filter,
                       topics.node_status("aggregator"))
    proc = fleetlearn("--config", str(config), "aggregator", "--broker", str(address),
                      "--prefix", prefix, "--no-checkpoints")
    try:
        watcher.wait(lambda: watcher.on("/status/aggregator")[-1:] == [b"online"], 30,
                     "the aggregator online")
        update = encode_update(Update("gw-0", 1, 0, 10, "y", LinearParams(
            ("a", "b"), np.array([1.0, 2.0]), 0.0), time.time(), Scaler(10, np.zeros(3),
                                                                        np.ones(3))))
        watcher.publish(topics.update("gw-0"), update)
        watcher.wait(lambda: watcher.on("/deadletter/"), what="the unsigned update refused")
        gateway_key = read_private(tmp_path / "gw-0.key")
        watcher.publish(topics.update("gw-0"), sign(update, gateway_key, "update"))
        watcher.wait(lambda: watcher.on("/learn/model"), what="a model")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        finally:
            proc.kill()
            proc.wait()
            watcher.close()
    assert orjson.loads(watcher.on("/deadletter/")[0])["reason"] == "unsigned"
    agg = read_private(tmp_path / "aggregator.key")
    trusted = TrustSet([TrustedKey(agg.kid, "aggregator", "aggregator", agg.public)])
    model = decode_model(verify(watcher.on("/learn/model")[0], trusted, "model")[0])
    assert model.version == 1 and model.contributors == ("gw-0",)


def test_the_aggregator_restarted_with_a_new_key_goes_on_without_a_gap(tmp_path, address,
                                                                        prefix):
    """The other way to rotate: trust the new key, restart the aggregator with it (it resumes
    from its checkpoint and the retained model its old key signed), revoke the old key."""
    topics = Topics(prefix)
    with Fleet(tmp_path, address, topics, state_dir=tmp_path / "state") as fleet:
        old = fleet.keys["aggregator"]
        fleet.wait(lambda: fleet.all_adopted(3), "every receiver on model v3")
        new = PrivateKey.generate()
        write_trust(fleet.trust, [*read_trust(fleet.trust),
                                  TrustedKey(new.kid, "aggregator", "aggregator", new.public)])
        fleet.wait(lambda: all(new.kid in n.keys.trust.keys for n in fleet.receivers()),
                   "the new key trusted")
        write_private(fleet.key_file("aggregator"), new.to_pem())
        fleet.restart_aggregator()
        fleet.wait(lambda: len(fleet.versions_signed_by(new)) >= 2
                   and fleet.all_adopted(fleet.versions_signed_by(new)[-1]),
                   "two models of the restarted aggregator adopted everywhere")
        write_trust(fleet.trust, [k.revoke() if k.kid == old.kid else k
                                  for k in read_trust(fleet.trust)])
        latest = fleet.versions_signed_by(new)[-1]
        fleet.wait(lambda: fleet.all_adopted(latest + 2), "versions going on after the revoke")
        refused = dict(fleet.aggregator.refused)
    before, after = fleet.versions_signed_by(old), fleet.versions_signed_by(new)
    assert before == list(range(1, before[-1] + 1))
    assert after == list(range(before[-1] + 1, after[-1] + 1))  # no gap, nothing made twice
    assert not any(reason.startswith("model_") for reason in refused), refused
