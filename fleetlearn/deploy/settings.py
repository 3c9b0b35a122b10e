"""What `fleetlearn up` is asked to run: the fleet (or replay) and the deployment's shape, plus
the node settings given on its command line, which reach the nodes through the config file
`up` writes for them (:meth:`UpSettings.node_settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.address import BrokerAddress
from broker.reading_codec import LAYOUTS
from devices.faults import FaultRates
from devices.replay import ReplayConfig
from devices.simulator import FleetSimulator


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
    #: TLS, a login per node, the ACL and signed models and updates (fleetlearn.deploy.secure),
    #: its files under ``secure_dir`` (None: ``secure`` in the log dir; `up --secure`'s
    #: own default is per prefix and kept, as `broker --secure`'s).
    secure: bool = False
    secure_dir: Path | None = None
    # The nodes' settings given on up's command line (None: not given, so the config file's or
    # the node's own default): they reach the nodes through the config file up writes.
    sync_every: int | None = None
    sync_interval: float | None = None
    features: str | None = None  # comma-separated; default: the simulated fleet's channels
    target: str | None = None
    kind: str | None = None
    optimizer: str | None = None
    lr: float | str | None = None  # "auto": chosen online
    personalize: str | None = None
    heterogeneity: float = 0.0
    replay: ReplayConfig | None = None  # a CSV source instead of the simulated fleet
    config: Path | None = None  # the TOML file, handed on to every node
    faults: str = ""
    drift_at: float | None = None
    positives: float | None = None  # the fleet's: a 0/1 'event' channel with that share of 1s
    strategy: str | None = None
    merge: str | None = None
    drift_policy: str | None = None
    send_buffer: int = 10_000  # the fleet's: QoS 1 messages waiting for an acknowledgement
    #: Seconds the drain waits, once the fleet has stopped, for the gateways to take in every
    #: reading published.
    drain_timeout: float = 15.0
    within: float = 0.05
    log_dir: Path | None = None
    log_level: str = "INFO"  # of the nodes: their logs in log_dir are read by people
    log_format: str = "text"
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The port of the live page on 127.0.0.1 (fleetlearn.dashboard; 0: any free one, for a
    #: caller that reads ``LocalDeployment.dashboard.server.port``); None: no page.
    dashboard: int | None = None
    #: "flat": one broker; "bridged": a core broker and a bridged broker per site
    #: (fleetlearn.deploy.bridged)
    topology: str = "flat"

    def __post_init__(self) -> None:
        for name in ("devices", "sites", "gateways", "batch", "sync_every", "send_buffer"):
            if (getattr(self, name) or 1) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.rate <= 0:
            raise ValueError("--rate must be > 0")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("--duration must be > 0")
        if self.drain_timeout < 0:
            raise ValueError("--drain-timeout must be >= 0")
        if self.secure and self.broker is not None:
            raise ValueError("--secure starts a secured broker of its own; for yours, give "
                             "--broker mqtts://HOST:PORT with --tls-ca, --username, --password")
        if self.dashboard is not None and not 0 <= self.dashboard <= 65535:
            raise ValueError("--dashboard must be a port, 1 to 65535")  # (0 from code only)
        if self.qos not in (0, 1):
            raise ValueError("--qos must be 0 or 1")
        if self.layout not in LAYOUTS:
            raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}")
        if self.topology not in ("flat", "bridged"):
            raise ValueError("--topology must be flat or bridged")
        if self.topology == "bridged" and (self.broker or self.replay):
            raise ValueError("--topology bridged starts its own brokers for the simulated "
                             "fleet: not with --broker or a replay")
        if self.topology == "bridged" and self.gateways < self.sites:
            raise ValueError("--topology bridged needs a gateway per site at least "
                             "(--gateways >= --sites)")
        if self.replay is not None and not (self.features and self.target):
            raise ValueError("a replay needs the task: --features and --target (or [task])")
        if self.faults:
            if self.replay is not None:
                raise ValueError("--faults is for the simulated fleet, not a replay")
            FaultRates.parse(self.faults)  # refuse a bad spec before anything starts
            if self.batch != 1:
                raise ValueError("faults are injected per message: use --batch 1 with --faults")

    def node_settings(self, file: dict[str, dict[str, Any]] | None = None
                      ) -> dict[str, dict[str, Any]]:
        """The config every node reads: the file's sections, with the node settings given to
        ``up`` itself on top. The fleet's and replay's settings are ``up``'s own, so they are
        written whole.

        >>> UpSettings(lr=0.1).node_settings({"learner": {"l2": 0.01}})["learner"]
        {'l2': 0.01, 'lr': 0.1}
        >>> UpSettings().node_settings({"aggregator": {"quorum": 1}})["aggregator"]["quorum"]
        1
        >>> UpSettings(gateways=2, rate=500.0).node_settings()["aggregator"]
        {'quorum': 2, 'learners': ['gw-0', 'gw-1'], 'max_rate': 2000.0}
        >>> "metrics" in UpSettings().node_settings({"metrics": {"port": 9100}})  # up's own
        False
        """
        # [broker] is up's own: each node gets the connection on its command line and the
        # credentials in its environment, never in a file in the log dir; [metrics] is up's
        # own endpoint (its nodes, on one machine, cannot all listen on its port)
        sections = {name: dict(values) for name, values in (file or {}).items()
                    if name not in ("broker", "metrics")}
        given = {
            "task": {"features": self.features and self.features.split(","),
                     "target": self.target, "kind": self.kind},
            "learner": {"optimizer": self.optimizer, "lr": self.lr,
                        "personalize": self.personalize},
            "sync": {"sync_every": self.sync_every, "sync_interval": self.sync_interval},
            "aggregator": {"strategy": self.strategy, "merge": self.merge,
                           "drift_policy": self.drift_policy},
            "fleet": {"devices": self.devices, "sites": self.sites, "seed": self.seed,
                      "rate": self.rate, "batch": self.batch, "layout": self.layout,
                      "qos": self.qos, "faults": self.faults, "drift_at": self.drift_at,
                      "positives": self.positives, "heterogeneity": self.heterogeneity,
                      "send_buffer": self.send_buffer},
        }
        if self.replay is not None:
            r = self.replay
            given["replay"] = {"file": str(r.path), "time_col": r.time_col,
                               "device_col": r.device_col, "date_col": r.date_col,
                               "time_format": r.time_format, "skip_rows": r.skip_rows or None,
                               "columns": list(r.columns) if r.columns else None,
                               "site": r.site, "speed": r.speed, "qos": self.qos,
                               "tz_col": r.tz_col}
            if r.tz_col is not None:  # each device's zone, for the time features; the file's
                task = sections.setdefault("task", {})  # own [task.timezones] win
                task["timezones"] = {**r.plan().zones, **task.get("timezones", {})}
        for name, values in given.items():
            chosen = {k: v for k, v in values.items() if v is not None and v != ""}
            if chosen:
                sections.setdefault(name, {}).update(chosen)
        # up knows how many gateways it starts: a round waits for all of them, unless the file
        # says otherwise (the aggregator alone waits for every learner it has heard from, which
        # at start is the first one: a first model of one gateway, the other's stale update
        # then merged into it)
        aggregator = sections.setdefault("aggregator", {})
        aggregator.setdefault("quorum", self.gateways)
        # it knows which learners there are (any other id is refused), and that none can see
        # more readings than the whole fleet publishes (4x: room for a burst after a stall)
        aggregator.setdefault("learners", [f"gw-{i}" for i in range(self.gateways)])
        if self.replay is None:
            aggregator.setdefault("max_rate", 4 * self.rate)
        return sections

    def devices_and_partitions(self) -> tuple[list[str], list[str]]:
        """The source's device ids, and each gateway's partition of them."""
        if self.replay is not None:
            r = self.replay
            devices = list(r.plan().devices)
            return devices, self.partitions(devices)
        sim = FleetSimulator(self.devices, self.sites, self.seed)
        return [d.device for d in sim.devices], self.partitions()

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
