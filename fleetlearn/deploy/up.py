"""`fleetlearn up`: a whole local deployment, each node its own OS process.

Starts a broker (unless one is given), the aggregator, K gateways and the predictor, waits until
they are online, then the fleet. When the time is up (or on the first Ctrl-C or SIGTERM) it
stops the fleet first, lets the gateways account for every reading and sync once more (bounded,
shorter when interrupted), lets the aggregator merge, stops the rest, and reports. A second
Ctrl-C kills every process it started and raises KeyboardInterrupt at once. Every process it
started is stopped, and only those; each also dies with `up` (the parent-death signal).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.address import BrokerAddress, BrokerUnreachable
from broker.backoff import connect_timeout
from broker.keyring import Keyring
from broker.mosquitto import MosquittoBroker
from broker.processes import die_with_parent
from broker.topics import Topics
from devices.truth import GroundTruth
from fleetlearn.config import dump_config, load_config
from fleetlearn.deploy import processes as procs
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.processes import Child
from fleetlearn.deploy.report import deployment_report
from fleetlearn.deploy.secure import SecuredDeployment, login, secure_files, signing
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.state import DeploymentState
from gateway.task_check import TaskUnfit
from learners.federation import FederationConfig


class DeploymentError(RuntimeError):
    """A node did not come up, or died."""


class ReadingsUnaccounted(RuntimeError):
    """The run ended with readings published that are not accounted for (exit code 3; the
    summary and the report are out by then)."""


Progress = Callable[[DeploymentState, float], None]
#: Shows the drain: the state, and the seconds the drain may still wait.
DrainProgress = Callable[[DeploymentState, float], None]

#: Seconds the drain waits at most after a Ctrl-C (whoever presses it wants out within seconds).
SETTLE_INTERRUPTED = 4.0


class LocalDeployment:
    def __init__(self, settings: UpSettings, progress: Progress | None = None,
                 on_drain: DrainProgress | None = None) -> None:
        self.settings, self.progress, self.on_drain = settings, progress, on_drain
        self.topics = Topics(settings.prefix)
        self.truth = None if settings.replay else GroundTruth.from_seed(settings.seed)
        self.source = "replay" if settings.replay else "fleet"
        # the nodes it starts: metrics from any other are ignored (and counted)
        known = {"aggregator": "aggregator", "predictor": "predictor", self.source: self.source,
                 **{f"gw-{i}": "gateway" for i in range(settings.gateways)}}
        self.state = DeploymentState(truth=self.truth, within=settings.within, known=known)
        self.log_dir = Path(settings.log_dir or tempfile.mkdtemp(prefix="fleetlearn-up-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.own_broker: MosquittoBroker | None = None
        self.secured: SecuredDeployment | None = None  # up --secure: its files, logins, keys
        self.address: BrokerAddress | None = settings.broker
        self.children: list[Child] = []
        self.monitor: Monitor | None = None
        self.dashboard: Any = None  # up --dashboard: its live page (fleetlearn.dashboard.live)
        self.interrupted = self.aborted = False
        self.fleet_started = self.fleet_stopped = 0.0
        self.node_config = settings.node_settings(
            load_config(settings.config) if settings.config else None)
        self.config_path = self.log_dir / "fleetlearn.toml"
        self.samples_dir = self.log_dir / "samples"  # what the gateways learned (baselines)
        shutil.rmtree(self.samples_dir, ignore_errors=True)  # an earlier run's, same log dir
        self.config_path.write_text(dump_config(self.node_config))
        self.round_timeout = float(self.node_config.get("aggregator", {}).get(
            "round_timeout", FederationConfig().strategy.round_timeout))

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, *args: str) -> Child:
        s = self.settings
        reach, env = procs.connection(login(self.secured, self.address, name),
                                      {**os.environ, **s.extra_env})
        argv = [sys.executable, "-m", "fleetlearn", "--log-level", s.log_level,
                "--log-format", s.log_format, "--config", str(self.config_path), *args,
                *signing(self.secured, name), *reach, "--prefix", s.prefix]
        child = Child(name, argv, self.log_dir / f"{name}.log")
        env["FLEETLEARN_PARENT_PID"] = str(os.getpid())
        with open(child.log_path, "wb") as log:
            # its own session: a Ctrl-C reaches `up` alone, which stops the nodes in order
            child.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True, preexec_fn=die_with_parent)
        self.children.append(child)
        return child

    def _check_alive(self) -> None:
        """Raise :class:`DeploymentError` naming the cause if the broker or a node is gone
        (:class:`~gateway.task_check.TaskUnfit` if a gateway found the task does not fit)."""
        if (problem := procs.task_problem(self.children, self.state.nodes)) is not None:
            raise TaskUnfit(problem)
        broker = self.own_broker
        if broker is not None and broker.process is not None and not broker.running:
            raise DeploymentError(f"the broker exited with code {broker.process.returncode} "
                                  f"(log: {broker.log_path})")
        if (gone := procs.exit_problem(self.children)) is not None:
            raise DeploymentError(gone)

    # ------------------------------------------------------------------ phases

    def start(self) -> None:
        s = self.settings
        devices, partitions = s.devices_and_partitions()
        if self.address is None:
            if s.secure:  # TLS, a login per node, the ACL, and signing keys
                self.secured = secure_files(s.secure_dir, self.log_dir, self.topics,
                                            s.gateways, devices)
            self.own_broker = MosquittoBroker(data_dir=self.log_dir / "broker",
                                              secure=self.secured and self.secured.files)
            self.own_broker.start()  # held first: an interrupt while it starts still stops it
            self.address = BrokerAddress(port=self.own_broker.port, tls=s.secure)
        self.monitor = Monitor(self.topics, login(self.secured, self.address, "monitor"),
                               self.state, give_up_after=connect_timeout(),
                               keys=self.secured and Keyring(trust_file=self.secured.trust))
        self.monitor.connect()
        if s.dashboard is not None:  # the live page; aiohttp is imported only then
            from fleetlearn.dashboard.live import attach
            self.dashboard = attach(self.monitor, self.state, s.dashboard, self.children)
        allowlist = str(procs.write_allowlist(self.log_dir, devices))
        # decided by up: ids, partitions, the allowlist, the checkpoints (this run's), how often
        # nodes report, for a replay no clock window; all else comes from the config file
        decided = ["--metrics-interval", "0.5"]
        clocks = ["--max-age", "0", "--max-skew", "0"] if s.replay is not None else []
        self._spawn("aggregator", "aggregator", *decided,
                    "--state-dir", str(self.log_dir / "aggregator-state"))
        for i, partition in enumerate(partitions):  # each keeps its samples for the baselines
            self._spawn(f"gw-{i}", "gateway", "--id", f"gw-{i}", "--partition", partition,
                        "--allowlist", allowlist, "--quality-interval", "2", *clocks, *decided,
                        "--samples-log", str(self.samples_dir / f"gw-{i}.npz"),
                        "--state-dir", str(self.log_dir / f"gw-{i}-state"))
        # the predictor cleans as the gateways do: their task and cleaning (the config file),
        # allowlist and clock window
        self._spawn("predictor", "predict", "--allowlist", allowlist, *clocks, *decided)
        if (missing := self._await_online(self.children)) and not procs.any_exited(self.children):
            raise DeploymentError(f"nodes did not come online in 30 s: {', '.join(missing)}")
        self._check_alive()
        if not self.interrupted:
            self._start_source()

    def _await_online(self, children: list[Child]) -> list[str]:
        """Wait (30 s at most) until ``children`` are online, one exits, or Ctrl-C; which of
        them are not online."""
        names = [c.name for c in children]
        self.monitor.wait_for(lambda: all(self.state.online.get(n) for n in names)
                              or procs.any_exited(self.children) or self.interrupted, timeout=30)
        return [n for n in names if not self.state.online.get(n)] if not self.interrupted else []

    def _start_source(self) -> None:
        """The fleet (or the replay). The run's clock starts once it is online: ``--duration``
        is the time readings flow, not the time a loaded machine takes to start a process."""
        before = len(self.children)
        self._spawn_source()
        self._await_online(self.children[before:])
        self.fleet_started = self.monitor.started = time.monotonic()

    def _spawn_source(self) -> None:
        """The fleet or the replay, its settings from the config file (``[fleet]``,
        ``[replay]``)."""
        if self.settings.replay is not None:
            self._spawn("replay", "devices", "replay", str(self.settings.replay.path),
                        "--metrics-interval", "0.5")
        else:
            self._spawn("fleet", "devices", "simulate", "--metrics-interval", "0.5")

    def _source_done(self) -> bool:
        """Whether the source has ended of itself (a replay's whole file is out)."""
        source = next((c for c in self.children if c.name == self.source), None)
        return source is None or (self.source == "replay" and source.process.poll() == 0)

    def watch(self) -> None:
        """Show progress until the duration passes, the source ends, or Ctrl-C."""
        duration = self.settings.duration
        end = None if duration is None else self.fleet_started + duration
        next_show = 0.0
        while not self.interrupted and (end is None or time.monotonic() < end):
            self.monitor.poll(0.05)
            now = time.monotonic()
            if self._source_done():
                break
            if now >= next_show:
                self._check_alive()
                if self.progress is not None:
                    self.progress(self.state, now - self.fleet_started)
                next_show = now + 0.5

    def drain(self) -> None:
        """Stop the fleet, let every reading be accounted for, sync once more, merge."""
        procs.stop_children([c for c in self.children if c.name == self.source])
        self.fleet_stopped = time.monotonic()

        def all_accounted() -> bool:
            r = self.state.readings()
            return r["published"] > 0 and r["not_taken_in"] <= 0

        timeout = self.settings.drain_timeout
        self._wait(all_accounted, min(SETTLE_INTERRUPTED, timeout) if self.interrupted
                   else timeout, draining=True)
        procs.stop_children([c for c in self.children if c.name.startswith("gw-")])
        gateways_gone = time.time()

        def merged() -> bool:
            agg = self.state.nodes.get("aggregator", {})
            last = self.state.last_model.version if self.state.last_model else 0
            return (agg.get("ts", 0) > gateways_gone and agg.get("pending") == 0
                    and agg.get("model_version") == last)

        merge = self.round_timeout + 3.0
        self._wait(merged, min(merge, 2.0) if self.interrupted else merge)

    def _wait(self, condition: Callable[[], bool], timeout: float,
              draining: bool = False) -> bool:
        """Poll the monitor until ``condition()`` or ``timeout``, showing progress (and, while
        ``draining``, how many readings are taken in and how long it waits at most)."""
        deadline, next_show = time.monotonic() + timeout, 0.0
        while not condition():
            now = time.monotonic()
            if now > deadline:
                return False
            if now >= next_show:
                if self.progress is not None:
                    self.progress(self.state, (self.fleet_stopped or now) - self.fleet_started)
                if draining and self.on_drain is not None:
                    self.on_drain(self.state, max(deadline - now, 0.0))
                next_show = now + 0.5
            self.monitor.poll(0.05)
        return True

    def stop_all(self) -> None:
        try:  # the page closes even if a second Ctrl-C cuts this short
            procs.stop_children(self.children)
            monitor, self.monitor = self.monitor, None
            if monitor is not None:
                if monitor.node.connected and not self.aborted:  # take in the final metrics
                    with contextlib.suppress(BrokerUnreachable):  # said already, if it is gone
                        monitor.wait_for(lambda: False, timeout=0.3)
                monitor.close()
        finally:
            if self.dashboard is not None:
                self.dashboard.close()  # the last snapshot to the open pages, then stop
        if self.own_broker is not None:
            self.own_broker.stop()

    def run(self) -> dict[str, Any]:
        """Start, watch, drain, stop; the report. A second Ctrl-C raises KeyboardInterrupt."""
        handlers = {sig: signal.signal(sig, self._on_interrupt)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start()
                self.watch()
                self.drain()
            finally:
                self.stop_all()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return self.report()

    def _on_interrupt(self, *_: object) -> None:
        """First Ctrl-C (or SIGTERM): wind down. Second: kill everything, stop waiting."""
        if self.interrupted:
            self.abort()
            raise KeyboardInterrupt
        self.interrupted = True

    def abort(self) -> None:
        """Kill (SIGKILL) every process this deployment started, and reap them."""
        self.aborted = True
        running = [c.process for c in self.children if c.process is not None]
        if self.own_broker is not None and self.own_broker.process is not None:
            running.append(self.own_broker.process)
        procs.kill_all(running)
        if self.own_broker is not None:
            self.own_broker.stop(timeout=0.1)

    def report(self) -> dict[str, Any]:
        return deployment_report(self)  # see fleetlearn.deploy.report
