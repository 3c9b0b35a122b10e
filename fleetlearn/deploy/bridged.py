"""`fleetlearn up --topology bridged`: a core broker and a broker per site, each site's broker
bridged to the core (hierarchical, ``broker/bridge.py``), all on loopback.

At the core: the aggregator (its learners are the site aggregators; no per-learner rate bound,
``--max-rate 0``, since a bridge delivers what queued in bursts; unless a strategy is given,
``fedasync`` with ``--max-staleness 100``, so what queued during a cut is merged, not refused)
and `up`'s monitor, which sees every node's status and metrics through the bridges. At each
site ``sK``: its broker, its site aggregator ``site-sK``, its gateways (gateway ``gw-i`` serves
site ``s(i mod N)``; a site with several splits its devices among them), its predictor
``predictor-sK`` and its share of the simulated fleet, ``fleet-sK`` (``devices simulate --site
sK``, the rate divided among the sites). Readings never leave their site. No ``--broker`` or
``--replay`` (refused by :class:`~fleetlearn.deploy.settings.UpSettings`).

With ``--secure`` every broker is secured with the one deployment's files
(:mod:`fleetlearn.deploy.secure`, with the sites' logins ``bridge-sK``, ``site-sK``,
``predictor-sK``, ``fleet-sK``): each bridge speaks TLS to the core as ``bridge-sK``, every node
logs in as itself, and the site aggregators sign with their ``site_aggregator`` keys.
"""

from __future__ import annotations

import contextlib
import time

from broker.address import BrokerAddress
from broker.backoff import connect_timeout
from broker.bridge import BridgeSpec, bridge_lines, site_aggregator_id, site_bridge
from broker.keyring import Keyring
from broker.mosquitto import MosquittoBroker
from devices.simulator import FleetSimulator
from fleetlearn.deploy.monitor import Monitor
from fleetlearn.deploy.processes import any_exited, stop_children, write_allowlist
from fleetlearn.deploy.secure import login, secure_files
from fleetlearn.deploy.up import SETTLE_INTERRUPTED, DeploymentError, LocalDeployment


def site_plan(sites: int, gateways: int, devices: list[str]) -> list[tuple[str, str]]:
    """(site, partition) of each gateway ``gw-i``: site ``s(i mod sites)``, the whole site when
    it is the site's only gateway, else a share of the site's devices.

    >>> site_plan(2, 3, ["s0-d0000", "s1-d0001", "s0-d0002"])
    [('s0', 'devices:s0-d0000'), ('s1', 'sites:s1'), ('s0', 'devices:s0-d0002')]
    """
    plan = []
    for i in range(gateways):
        site = f"s{i % sites}"
        mates = [g for g in range(gateways) if g % sites == i % sites]
        if len(mates) == 1:
            plan.append((site, f"sites:{site}"))
            continue
        own = [d for d in devices if d.startswith(f"{site}-")][mates.index(i)::len(mates)]
        plan.append((site, "devices:" + ",".join(own)))
    return plan


class BridgedDeployment(LocalDeployment):
    """A local deployment over a core broker and one bridged broker per site."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        s = self.settings
        self.sites = [f"s{k}" for k in range(s.sites)]
        self.site_brokers: dict[str, MosquittoBroker] = {}
        self.site_address: dict[str, BrokerAddress] = {}
        self.state.known = {
            "aggregator": "aggregator", **{f"gw-{i}": "gateway" for i in range(s.gateways)},
            **{site_aggregator_id(k): "site_aggregator" for k in self.sites},
            **{f"predictor-{k}": "predictor" for k in self.sites},
            **{f"fleet-{k}": "fleet" for k in self.sites}}

    def _at(self, site: str, name: str, *args: str) -> None:
        """Start a node of ``site`` on the site's broker."""
        core, self.address = self.address, self.site_address[site]
        try:
            self._spawn(name, *args)
        finally:
            self.address = core

    def _bridge_port(self, site: str) -> int:
        """Where ``site``'s bridge connects on loopback: the core broker (a benchmark puts a
        link it can cut in between, :mod:`fleetlearn.bench.topology`)."""
        return self.own_broker.port

    def start(self) -> None:
        s = self.settings
        devices = [d.device for d in FleetSimulator(s.devices, s.sites, s.seed).devices]
        if s.secure:  # one deployment's files for every broker, with the sites' logins
            self.secured = secure_files(s.secure_dir, self.log_dir, self.topics, s.gateways,
                                        devices, tuple(self.sites))
        files = self.secured and self.secured.files
        self.own_broker = MosquittoBroker(data_dir=self.log_dir / "broker", secure=files)
        self.own_broker.start()
        self.address = BrokerAddress(port=self.own_broker.port, tls=s.secure)
        for site in self.sites:
            spec = (BridgeSpec(site, "127.0.0.1", self._bridge_port(site), hierarchical=True)
                    if not files else site_bridge(site, f"mqtts://127.0.0.1:"
                                                  f"{self._bridge_port(site)}",
                                                  hierarchical=True, secure=files))
            broker = MosquittoBroker(data_dir=self.log_dir / f"broker-{site}",
                                     bridge=bridge_lines(self.topics, spec), secure=files)
            self.site_brokers[site] = broker
            broker.start()
            self.site_address[site] = BrokerAddress(port=broker.port, tls=s.secure)
        self.monitor = Monitor(self.topics, login(self.secured, self.address, "monitor"),
                               self.state, give_up_after=connect_timeout(),
                               keys=self.secured and Keyring(trust_file=self.secured.trust))
        self.monitor.connect()
        if self.settings.dashboard is not None:  # the live page, of the core's view
            from fleetlearn.dashboard.live import attach
            self.dashboard = attach(self.monitor, self.state, self.settings.dashboard,
                                    self.children)
        allowlist = str(write_allowlist(self.log_dir, devices))
        decided = ["--metrics-interval", "0.5"]
        # unless told a strategy: fedasync with room for what queued during a cut (sync
        # rounds refuse it as stale: healing took 5.7-8.0 s instead of 1 s, bench topology)
        core = ([] if "strategy" in self.node_config.get("aggregator", {})
                else ["--strategy", "fedasync", "--max-staleness", "100"])
        self._spawn("aggregator", "aggregator", *decided, *core, "--max-rate", "0", "--learners",
                    ",".join(site_aggregator_id(k) for k in self.sites),
                    "--state-dir", str(self.log_dir / "aggregator-state"))
        for site in self.sites:
            node = site_aggregator_id(site)
            self._at(site, node, "aggregator", "--site", site, *decided,
                     "--state-dir", str(self.log_dir / f"{node}-state"))
        for i, (site, partition) in enumerate(site_plan(s.sites, s.gateways, devices)):
            self._at(site, f"gw-{i}", "gateway", "--id", f"gw-{i}", "--partition", partition,
                     "--allowlist", allowlist, "--quality-interval", "2", *decided,
                     "--state-dir", str(self.log_dir / f"gw-{i}-state"))
        for site in self.sites:
            self._at(site, f"predictor-{site}", "predict", "--id", f"predictor-{site}",
                     "--partition", f"sites:{site}", "--allowlist", allowlist, *decided)
        names = [c.name for c in self.children]
        if not self.monitor.wait_for(lambda: all(self.state.online.get(n) for n in names)
                                     or any_exited(self.children) or self.interrupted, timeout=30):
            missing = [n for n in names if not self.state.online.get(n)]
            raise DeploymentError(f"nodes did not come online in 30 s: {', '.join(missing)}")
        self._check_alive()
        if self.interrupted:
            return
        self._start_source()  # the clock starts once the site fleets are online

    def _spawn_source(self) -> None:
        rate = self.settings.rate / len(self.sites)
        for site in self.sites:
            self._at(site, f"fleet-{site}", "devices", "simulate", "--site", site, "--id",
                     f"fleet-{site}", "--rate", repr(rate), "--metrics-interval", "0.5")

    def _fleets(self) -> list:
        return [c for c in self.children if c.name.startswith("fleet-")]

    def _check_alive(self) -> None:
        super()._check_alive()
        for site, broker in self.site_brokers.items():
            if broker.process is not None and not broker.running:
                raise DeploymentError(f"the broker of site {site} exited with code "
                                      f"{broker.process.returncode} (log: {broker.log_path})")

    def _source_done(self) -> bool:
        return not self._fleets()  # every site's fleet gone

    def drain(self) -> None:
        """As a flat deployment's: the fleets stop, the readings are taken in, the gateways
        stop; then the core's last merge (its site aggregators send what they hold)."""
        stop_children(self._fleets())
        self.fleet_stopped = time.monotonic()
        timeout = self.settings.drain_timeout

        def all_accounted() -> bool:
            r = self.state.readings()
            return r["published"] > 0 and r["not_taken_in"] <= 0

        self._wait(all_accounted, min(SETTLE_INTERRUPTED, timeout) if self.interrupted
                   else timeout, draining=True)
        stop_children([c for c in self.children if c.name.startswith("gw-")])
        gone = time.time()

        def merged() -> bool:
            agg = self.state.nodes.get("aggregator", {})
            last = self.state.last_model.version if self.state.last_model else 0
            return (agg.get("ts", 0) > gone + 1.0 and agg.get("pending") == 0
                    and agg.get("model_version") == last)

        merge = self.round_timeout + 3.0
        self._wait(merged, min(merge, 2.0) if self.interrupted else merge)

    def report(self) -> dict:
        """A flat deployment's report, with every site's predictions and the topology."""
        result = super().report()
        predictors = [self.state.nodes.get(f"predictor-{k}", {}) for k in self.sites]
        result["predictions"] = sum(p.get("predictions", 0) for p in predictors)
        result["topology"] = {"kind": "bridged", "sites": self.sites,
                              "site_brokers": {k: str(a) for k, a in self.site_address.items()}}
        return result

    def stop_all(self) -> None:
        super().stop_all()
        for broker in self.site_brokers.values():
            broker.stop()

    def abort(self) -> None:
        for broker in self.site_brokers.values():
            if broker.process is not None and broker.process.poll() is None:
                broker.process.kill()
        super().abort()
        for broker in self.site_brokers.values():
            with contextlib.suppress(Exception):
                broker.stop(timeout=0.1)
