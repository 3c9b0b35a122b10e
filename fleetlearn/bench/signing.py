"""The ``signing`` scenario: what verifying one model's signature costs a gateway, against what
adopting that model costs it, for the simulated task's model (3 features) and a wider one.
One core, no broker. Also the keys of a signed benchmark fleet (:func:`fleet_keys`).

Everything goes through the gateway's own code: a real :class:`~gateway.service.Gateway` (never
connected) is handed the model payloads as its control connection would hand them, in rising
versions, the best of ``repeats`` runs each:

- ``verify_us``: :meth:`Keyring.check <broker.keyring.Keyring.check>` of a signed model, what the
  gateway does for the signature (cut the trailer, look the key up, Ed25519 verify, the signer's
  role);
- ``adopt_us``: :meth:`Gateway.adopt <gateway.service.Gateway.adopt>` of the unsigned model on a
  gateway without keys: decode, admission, :meth:`LocalLearner.adopt
  <learners.local.LocalLearner.adopt>` with the model's moments and the kernel's state, the log
  call: everything a model costs but its signature;
- ``signed_adopt_us``: ``Gateway.adopt`` of the signed model on a gateway with a trust file,
  end to end; ``ratio`` is verify / adopt, the issue's goal (< 0.05).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from broker.address import BrokerAddress
from broker.keyring import Keyring, write_private, write_trust
from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import encode_model
from broker.signing import PrivateKey, TrustedKey
from broker.topics import Topics
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.service import Gateway

#: The goal of the issue: verifying a model costs less than this share of adopting it.
GOAL = 0.05


def fleet_keys(directory: Path, learners: list[str], aggregator: str = "aggregator"
               ) -> dict[str, Keyring]:
    """A key file per node and one trust file naming them all, in ``directory``; each node's
    :class:`~broker.keyring.Keyring` (it signs, and requires signatures), by name.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rings = fleet_keys(Path(d), ["gw-0"])
    ...     sorted(p.name for p in Path(d).iterdir()), rings["gw-0"].required
    (['aggregator.key', 'gw-0.key', 'trust.toml'], True)
    """
    keys, trusted = {}, []
    for name, role in [(aggregator, "aggregator"), *((n, "gateway") for n in learners)]:
        keys[name] = PrivateKey.generate()
        write_private(directory / f"{name}.key", keys[name].to_pem())
        trusted.append(TrustedKey(keys[name].kid, name, role, keys[name].public))
    write_trust(directory / "trust.toml", trusted)
    return {name: Keyring(directory / f"{name}.key", directory / "trust.toml") for name in keys}


def _models(features: tuple[str, ...], count: int) -> list[bytes]:
    rng = np.random.default_rng(1)
    width = len(features)
    return [encode_model(Model(
        v, time.time(), 100 * v, ("gw-0", "gw-1"), "y",
        LinearParams(features, rng.normal(size=width), 0.5),
        Scaler(100 * v, rng.normal(size=width + 1), rng.random(width + 1) + 0.5),
        notes={"strategy": "sync", "merge": "mean", "staleness": {"gw-0": 0, "gw-1": 0}}))
        for v in range(1, count + 1)]


def _best_us(make: Callable[[], Callable[[], None]], count: int, repeats: int) -> float:
    """Microseconds per item of the fastest of ``repeats`` runs, each on what ``make`` built."""
    best = float("inf")
    for _ in range(repeats):
        run = make()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def _gateway(features: tuple[str, ...], keyring: Keyring | None) -> Gateway:
    config = GatewayConfig(node_id="gw-0", spec=FeatureSpec(features, "y"), keyring=keyring)
    return Gateway(config, Topics("bench"), BrokerAddress())


def bench_signature_cost(features: tuple[int, ...] = (3, 64), count: int = 2000,
                         repeats: int = 3, scenario: str = "signing", **_: Any
                         ) -> list[dict[str, Any]]:
    """Microseconds per model: its signature checked, and the gateway's adoption of it."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory(prefix="fleetlearn-sig-") as d:
        keys = fleet_keys(Path(d), ["gw-0"])
        signer, ring = keys["aggregator"], keys["gw-0"]
        for width in features:
            names = tuple(f"f{i}" for i in range(width))
            bodies = _models(names, count)
            signed = [signer.sign(b, "model") for b in bodies]

            def check(signed: list[bytes] = signed) -> Callable[[], None]:
                def run() -> None:
                    for p in signed:
                        ring.check(p, "model", "aggregator")
                return run

            def adopt(payloads: list[bytes], keyring: Keyring | None,
                      names: tuple[str, ...] = names) -> Callable[[], Callable[[], None]]:
                def make() -> Callable[[], None]:
                    gw = _gateway(names, keyring)

                    def run() -> None:
                        for p in payloads:
                            gw.adopt(p)
                        if gw.models_adopted != len(payloads):  # every one taken, none refused
                            raise RuntimeError(f"the gateway refused models: {gw.other_rejected}")
                    return run
                return make

            verify_us = _best_us(check, count, repeats)
            adopt_us = _best_us(adopt(bodies, None), count, repeats)
            signed_us = _best_us(adopt(signed, ring), count, repeats)
            ratio = verify_us / adopt_us
            rows.append({"scenario": scenario, "stream": f"model of {width} features",
                         "bytes": len(signed[0]), "baseline": f"adopt (goal: ratio < {GOAL})",
                         "verify_us": round(verify_us, 1), "adopt_us": round(adopt_us, 1),
                         "signed_adopt_us": round(signed_us, 1), "ratio": round(ratio, 2),
                         "goal": "met" if ratio < GOAL else "not met"})
    return rows
