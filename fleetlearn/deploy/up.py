"""`fleetlearn up`: a whole local deployment, each node its own OS process.

Starts a broker (unless one is given), the aggregator, K gateways and the predictor, waits until
they are online, then the fleet. When the time is up (or on Ctrl-C) it stops the fleet first,
lets the gateways account for every reading and sync once more, lets the aggregator merge, stops
the rest, and reports. Every process it started is stopped, and only those.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.client import BrokerAddress
from broker.mosquitto import MosquittoBroker
from broker.reading_codec import LAYOUTS
from broker.topics import Topics
from devices.faults import FaultRates
from devices.replay import ReplayConfig, load_readings
from devices.simulator import FleetSimulator
from devices.truth import GroundTruth
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.state import DeploymentState


class DeploymentError(RuntimeError):
    """A node did not come up, or died."""


@dataclass(frozen=True)
class UpSettings:
    devices: int = 20
    sites: int = 2
    gateways: int = 2
    rate: float = 1000.0
    batch: int = 1
    layout: str = "columns"  # of a batch: "columns" or "rows"
    qos: int = 1
    seed: int = 0
    duration: float | None = 30.0
    prefix: str = "fleet"
    broker: BrokerAddress | None = None
    sync_every: int = 200
    sync_interval: float = 1.0
    round_timeout: float = 2.0
    features: str | None = None  # comma-separated; default: the simulated fleet's channels
    target: str | None = None
    kind: str = "regression"
    optimizer: str = "adagrad"
    lr: float | None = None
    replay: ReplayConfig | None = None  # a CSV source instead of the simulated fleet
    config: Path | None = None  # the TOML file, handed on to every node
    faults: str = ""
    drift_at: float | None = None
    strategy: str | None = None  # the aggregator's; None: its own default (or the config's)
    merge: str | None = None
    drift_policy: str | None = None
    within: float = 0.05
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("devices", "sites", "gateways", "batch", "sync_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.rate <= 0:
            raise ValueError("--rate must be > 0")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("--duration must be > 0")
        if self.qos not in (0, 1):
            raise ValueError("--qos must be 0 or 1")
        if self.layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}")
        if self.replay is not None and not (self.features and self.target):
            raise ValueError("a replay needs the task: --features and --target (or [task])")
        if self.faults:
            if self.replay is not None:
                raise ValueError("--faults is for the simulated fleet, not a replay")
            FaultRates.parse(self.faults)  # refuse a bad spec before anything starts
            if self.batch != 1:
                raise ValueError("faults are injected per message: use --batch 1 with --faults")

    def partitions(self, devices: list[str] | None = None) -> list[str]:
        """A replay's devices dealt out to the gateways; else whole sites per gateway when they
        divide evenly, else device-hash buckets."""
        k = self.gateways
        if devices is not None:
            if len(devices) < k:
                raise ValueError(f"{k} gateways for {len(devices)} devices: use --gateways "
                                 f"{len(devices)} or fewer")
            return ["devices:" + ",".join(devices[i::k]) for i in range(k)]
        if self.sites % k == 0:
            return ["sites:" + ",".join(f"s{s}" for s in range(i, self.sites, k))
                    for i in range(k)]
        return [f"bucket:{i}/{k}" for i in range(k)]


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def record(self) -> dict[str, Any]:
        code = self.process.poll() if self.process else None
        return {"name": self.name, "pid": self.pid, "exit_code": code,
                "stopped": self.process is not None and code is not None,
                "log": str(self.log_path)}


Progress = Callable[[DeploymentState, float], None]


class LocalDeployment:
    def __init__(self, settings: UpSettings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.topics = Topics(settings.prefix)
        self.truth = None if settings.replay else GroundTruth.from_seed(settings.seed)
        self.state = DeploymentState(truth=self.truth, within=settings.within)
        self.source = "replay" if settings.replay else "fleet"
        self.log_dir = Path(settings.log_dir or tempfile.mkdtemp(prefix="fleetlearn-up-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.own_broker: MosquittoBroker | None = None
        self.address: BrokerAddress | None = settings.broker
        self.children: list[Child] = []
        self.monitor: Monitor | None = None
        self.interrupted = False
        self.fleet_started = 0.0
        self.fleet_stopped = 0.0

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, *args: str) -> Child:
        s = self.settings
        config = ["--config", str(s.config)] if s.config else []
        argv = [sys.executable, "-m", "fleetlearn", *config, *args,
                "--broker", str(self.address), "--prefix", s.prefix]
        child = Child(name, argv, self.log_dir / f"{name}.log")
        env = {**os.environ, **s.extra_env, "FLEETLEARN_PARENT_PID": str(os.getpid())}
        with open(child.log_path, "wb") as log:
            # A session of its own: a Ctrl-C at the terminal reaches `up` alone, which then
            # stops the nodes in order.
            child.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env,
                                             start_new_session=True)
        self.children.append(child)
        return child

    def _stop(self, children: list[Child], timeout: float = 10.0) -> None:
        for child in children:
            if child.running:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(5)

    def _check_alive(self) -> None:
        for child in self.children:
            code = child.process.poll() if child.process is not None else None
            if code is not None and not (child.name == "replay" and code == 0):
                tail = child.log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise DeploymentError(
                    f"{child.name} exited with code {child.process.returncode}: "
                    f"{tail[0] if tail else 'no output'} (log: {child.log_path})")

    # ------------------------------------------------------------------ phases

    def start(self) -> None:
        s = self.settings
        if self.address is None:
            self.own_broker = MosquittoBroker(data_dir=self.log_dir / "broker").start()
            self.address = BrokerAddress(port=self.own_broker.port)
        self.monitor = Monitor(self.topics, self.address, self.state)
        self.monitor.connect()
        devices, partitions = self._devices_and_partitions()
        task = ["--features", s.features or ",".join(self.truth.features),
                "--target", s.target or self.truth.target, "--kind", s.kind,
                "--optimizer", s.optimizer, *(["--lr", str(s.lr)] if s.lr else []),
                "--allowlist", str(self._write_allowlist(devices)), "--quality-interval", "2",
                "--sync-every", str(s.sync_every), "--sync-interval", str(s.sync_interval)]
        if s.replay is not None:
            task += ["--max-age", "0", "--max-skew", "0"]  # recorded clocks: no live window
        chosen = {"--strategy": s.strategy, "--merge": s.merge, "--drift-policy": s.drift_policy}
        self._spawn("aggregator", "aggregator", "--quorum", str(s.gateways),
                    "--round-timeout", str(s.round_timeout), "--metrics-interval", "0.5",
                    "--state-dir", str(self.log_dir / "aggregator-state"),
                    *(a for flag, value in chosen.items() if value for a in (flag, value)))
        for i, partition in enumerate(partitions):
            self._spawn(f"gw-{i}", "gateway", "--id", f"gw-{i}", "--partition", partition,
                        *task, "--metrics-interval", "0.5")
        self._spawn("predictor", "predict", "--metrics-interval", "0.5")
        names = [c.name for c in self.children]
        if not self.monitor.wait_for(lambda: all(self.state.online.get(n) for n in names)
                                     or self._any_exited(), timeout=30):
            missing = [n for n in names if not self.state.online.get(n)]
            raise DeploymentError(f"nodes did not come online in 30 s: {', '.join(missing)}")
        self._check_alive()
        self._spawn_source()
        self.fleet_started = time.monotonic()
        self.monitor.started = self.fleet_started

    def _devices_and_partitions(self) -> tuple[list[str], list[str]]:
        s = self.settings
        if s.replay is not None:
            plan = load_readings(s.replay.path, s.replay.time_col, s.replay.device_col,
                                 columns=s.replay.columns, site=s.replay.site)
            devices = list(plan.devices)
            return devices, s.partitions(devices)
        sim = FleetSimulator(s.devices, s.sites, s.seed)
        return [d.device for d in sim.devices], s.partitions()

    def _write_allowlist(self, devices: list[str]) -> Path:
        """The source's device ids: gateways refuse any other device."""
        path = self.log_dir / "devices.txt"
        path.write_text("".join(f"{d}\n" for d in devices))
        return path

    def _spawn_source(self) -> None:
        s, r = self.settings, self.settings.replay
        if r is not None:
            extra = ["--columns", ",".join(r.columns)] if r.columns else []
            extra += ["--speed", str(r.speed)] if r.speed else []
            self._spawn("replay", "devices", "replay", str(r.path), "--time-col", r.time_col,
                        "--device-col", r.device_col, "--site", r.site, "--qos", str(s.qos),
                        "--metrics-interval", "0.5", *extra)
            return
        extra = ["--faults", s.faults] if s.faults else []
        if s.drift_at is not None:
            extra += ["--drift-at", str(s.drift_at)]
        self._spawn("fleet", "devices", "simulate", "--devices", str(s.devices),
                    "--sites", str(s.sites), "--seed", str(s.seed), "--rate", str(s.rate),
                    "--batch", str(s.batch), "--layout", s.layout, "--qos", str(s.qos),
                    "--metrics-interval", "0.5", *extra)

    def _any_exited(self) -> bool:
        return any(c.process is not None and c.process.poll() is not None
                   for c in self.children)

    def watch(self) -> None:
        """Show progress until the duration passes, a replay ends, or Ctrl-C."""
        duration = self.settings.duration
        end = None if duration is None else self.fleet_started + duration
        source = next(c for c in self.children if c.name == self.source)
        next_show = 0.0
        while not self.interrupted and (end is None or time.monotonic() < end):
            self.monitor.poll(0.05)
            now = time.monotonic()
            if self.source == "replay" and source.process.poll() == 0:
                break  # the whole file is out
            if now >= next_show:
                self._check_alive()
                if self.progress is not None:
                    self.progress(self.state, now - self.fleet_started)
                next_show = now + 0.5

    def drain(self) -> None:
        """Stop the fleet, let every reading be accounted for, sync once more, merge."""
        by_name = {c.name: c for c in self.children}
        self._stop([by_name[self.source]])
        self.fleet_stopped = time.monotonic()
        settle = 15.0

        def all_accounted() -> bool:
            r = self.state.readings()
            return r["published"] > 0 and r["unaccounted"] <= 0 and not self.interrupted

        self.monitor.wait_for(all_accounted, timeout=settle)
        self._stop([c for c in self.children if c.name.startswith("gw-")])
        gateways_gone = time.time()

        def merged() -> bool:
            agg = self.state.nodes.get("aggregator", {})
            last = self.state.last_model.version if self.state.last_model else 0
            return (agg.get("ts", 0) > gateways_gone and agg.get("pending") == 0
                    and agg.get("model_version") == last)

        self.monitor.wait_for(merged, timeout=self.settings.round_timeout + 3.0)

    def stop_all(self) -> None:
        self._stop(self.children)
        if self.monitor is not None:
            self.monitor.wait_for(lambda: False, timeout=0.3)  # take in the final metrics
            self.monitor.close()
        if self.own_broker is not None:
            self.own_broker.stop()

    def run(self) -> dict[str, Any]:
        previous = signal.signal(signal.SIGINT, self._on_interrupt)
        try:
            self.start()
            self.watch()
            self.drain()
        finally:
            self.stop_all()
            signal.signal(signal.SIGINT, previous)
        return self.report()

    def _on_interrupt(self, *_: object) -> None:
        if self.interrupted:  # a second Ctrl-C: no more waiting
            for child in self.children:
                if child.running:
                    child.process.kill()
        self.interrupted = True

    # ------------------------------------------------------------------ report

    def report(self) -> dict[str, Any]:
        s, st = self.settings, self.state
        elapsed = max((self.fleet_stopped or time.monotonic()) - self.fleet_started, 1e-9)
        readings = st.readings()
        return {
            "broker": str(self.address), "own_broker": self.own_broker is not None,
            "prefix": s.prefix, "seconds": round(elapsed, 3), "interrupted": self.interrupted,
            "settings": {"devices": s.devices, "sites": s.sites, "gateways": s.gateways,
                         "rate": s.rate, "batch": s.batch, "layout": s.layout, "qos": s.qos,
                         "seed": s.seed, "sync_every": s.sync_every, "lr": s.lr,
                         "drift_at": s.drift_at,
                         "strategy": st.nodes.get("aggregator", {}).get("strategy")},
            "readings": readings,
            "readings_per_s": readings["published"] / elapsed,
            "faults": s.faults or None,
            "ground_truth_check": st.ground_truth_check(),
            "model": st.model_summary(),
            "truth": None if self.truth is None else {
                "weights": self.truth.weights, "intercept": self.truth.intercept,
                "target": self.truth.target},
            "source": "replay" if s.replay else "simulated fleet",
            "prequential": {n: m.get("prequential", {}) for n, m in st.of_kind("gateway").items()},
            "federated": st.nodes.get("aggregator", {}).get("federated", {}),
            "predictions": st.nodes.get("predictor", {}).get("predictions", 0),
            "deadletters": dict(st.deadletters),
            "processes": [c.record() for c in self.children],
            "broker_pid": getattr(self.own_broker, "_stopped_pid", None),
            "log_dir": str(self.log_dir),
        }
