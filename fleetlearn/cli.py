"""The `fleetlearn` command: one subcommand per process kind, plus `up` for all of them.

This is the composition root: it parses options, builds the services of the domain packages
and runs them. Misuse gets one line on stderr and a non-zero exit, never a traceback. The
gateway's and predictor's modules are imported by their commands only: every node is a process
of this CLI, and only a gateway needs numba and river (measured with ``fleetlearn bench
--scenario memory``: ~180 MiB a node with them, ~55 MiB without).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer
from rich.console import Console

from broker.client import BrokerAddress, BrokerUnreachable
from broker.mosquitto import BrokerError, MosquittoBroker
from broker.topics import TopicError, Topics, check_id, check_site
from devices.faults import FaultRates
from devices.fleet import Fleet, FleetConfig
from devices.replay import Replay, ReplayConfig
from fleetlearn.config import DEFAULT_FILE, ConfigError, default_map, load_config
from gateway.cleaning import ChannelPolicy, CleaningConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from learners.aggregator import Aggregator, AggregatorConfig
from learners.federation import FederationConfig
from learners.staleness import Staleness
from learners.strategies import MergeRule

app = typer.Typer(
    help="Online federated learning from IoT sensor streams over MQTT.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
devices_app = typer.Typer(help="Simulated devices that publish readings.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")

BrokerOpt = Annotated[str, typer.Option("--broker", help="Broker address HOST:PORT.",
                                        envvar="FLEETLEARN_BROKER")]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="Topic prefix of the deployment.",
                                        envvar="FLEETLEARN_PREFIX")]
UserOpt = Annotated[str | None, typer.Option("--username", envvar="FLEETLEARN_USERNAME",
                                             help="Broker user name.")]
PasswordOpt = Annotated[str | None, typer.Option("--password", envvar="FLEETLEARN_PASSWORD",
                                                 help="Broker password (better: the env var).")]
MetricsOpt = Annotated[float, typer.Option("--metrics-interval", min=0.05,
                                           help="Seconds between metrics messages.")]
KindOpt = Annotated[str, typer.Option(help="'regression', or 'binary' (logistic; targets 0/1).")]
OptimizerOpt = Annotated[str, typer.Option(help="'adagrad', 'rmsprop' or 'sgd'.")]
LrOpt = Annotated[float | None, typer.Option(min=1e-9, help="Learning rate (default: the "
                                             "optimizer's: adagrad 0.3, rmsprop 0.01, "
                                             "sgd 0.01).")]
LayoutOpt = Annotated[Literal["columns", "rows"], typer.Option(
    help="How a message of more than one reading (--batch > 1) is written: 'columns' (one "
         "JSON object, each channel a list: every key once per message, smaller) or 'rows' "
         "(a JSON array of reading objects).")]
DEFAULT_BROKER = "127.0.0.1:1883"


UsageProblem = typer.BadParameter  # a bad option value: one line, exit code 2


def _address(broker: str, username: str | None = None, password: str | None = None,
             ) -> BrokerAddress:
    try:
        address = BrokerAddress.parse(broker)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    return BrokerAddress(address.host, address.port, username, password)


def _topics(prefix: str) -> Topics:
    try:
        return Topics(prefix)
    except TopicError as exc:
        raise UsageProblem(str(exc)) from None


def _names(text: str, what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageProblem(f"{what} needs at least one channel name")
    return names


def _resolve_data_path(path: Path) -> Path:
    """A file, or ``pkg:PACKAGE/PATH`` for a data file an installed package ships."""
    text = str(path)
    if text.startswith("pkg:"):
        package, _, inner = text[4:].partition("/")
        try:
            path = Path(str(importlib.resources.files(package).joinpath(inner)))
        except ModuleNotFoundError:
            raise UsageProblem(f"no installed package {package!r} for {text}") from None
    if not path.is_file():
        raise UsageProblem(f"no such file: {text}")
    return path


def _no_limit(seconds: float) -> float:
    return float("inf") if seconds == 0 else seconds


def _read_allowlist(path: Path) -> frozenset[str]:
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise UsageProblem(f"cannot read the allowlist {path}: {exc.strerror}") from None
    return frozenset(check_id(line, "device id in the allowlist") for line in lines)


def _serve(service) -> None:
    """Run a service until SIGTERM/SIGINT; stop too if the `up` that started us is gone."""
    parent = os.environ.get("FLEETLEARN_PARENT_PID")
    if parent and parent.isdigit():
        service.node.every(1.0, lambda: os.getppid() != int(parent) and service.node.stop())
    service.run()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"fleetlearn {version('fleetlearn')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", envvar="FLEETLEARN_CONFIG",
        help=f"TOML file of settings; its values are the defaults of every option, and a flag "
             f"on the command line wins (default: ./{DEFAULT_FILE} if there is one).")] = None,
) -> None:
    """Online federated learning from IoT sensor streams over MQTT."""
    path = config if config is not None else Path(DEFAULT_FILE)
    if config is None and not path.is_file():
        return
    try:
        ctx.default_map = default_map(load_config(path))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    ctx.obj = path.resolve()


# ---------------------------------------------------------------------------- services


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).",
                                      min=0, max=65535)] = 1883,
    data_dir: Annotated[Path | None, typer.Option(help="Data and log dir (default: a temp dir).")
                        ] = None,
) -> None:
    """Run a Mosquitto broker for fleetlearn on 127.0.0.1 until Ctrl-C."""
    mosquitto = MosquittoBroker(port=port or None, data_dir=data_dir)
    # SIGTERM unwinds like Ctrl-C, so the broker we started is stopped with us.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # a SIGTERM may come as soon as the line is out: the print is inside the suppression too
    with mosquitto, contextlib.suppress(KeyboardInterrupt):
        print(f"mosquitto listening on 127.0.0.1:{mosquitto.port} (data: {mosquitto.data_dir})",
              flush=True)
        mosquitto.process.wait()


@devices_app.command("simulate")
def devices_simulate(
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = "fleet",
    devices: Annotated[int, typer.Option(min=1, help="Number of devices.")] = 20,
    sites: Annotated[int, typer.Option(min=1, help="Sites the devices are spread over.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the fleet and its ground truth.")] = 0,
    rate: Annotated[float, typer.Option(min=0.001, help="Readings per second, all devices."
                                        )] = 1000.0,
    batch: Annotated[int, typer.Option(min=1, help="Readings per message.")] = 1,
    layout: LayoutOpt = "columns",
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS of readings.")] = 1,
    duration: Annotated[float | None, typer.Option(min=0.001, help="Seconds to run "
                                                   "(default: until Ctrl-C).")] = None,
    faults: Annotated[str, typer.Option(help="Fault rates, e.g. 'all=0.05' or "
                                        "'spike=0.1,lost=0.02' (default: none).")] = "",
    drift_at: Annotated[float | None, typer.Option(min=0.0, help="Seconds into the run when "
                                                   "the hidden truth changes.")] = None,
    metrics_interval: MetricsOpt = 1.0,
    username: UserOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Simulate a fleet of sensors with a hidden linear ground truth (and, if asked, faults)."""
    try:
        config = FleetConfig(devices=devices, sites=sites, seed=seed, rate=rate, batch=batch,
                             layout=layout, qos=qos, duration=duration,
                             metrics_interval=metrics_interval,
                             faults=FaultRates.parse(faults) if faults else None,
                             drift_at=drift_at)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    _serve(Fleet(config, _topics(prefix), _address(broker, username, password)))


@devices_app.command("replay")
def devices_replay(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV file with a header row, or "
                                         "pkg:PACKAGE/PATH for one a package ships.")],
    time_col: Annotated[str, typer.Option("--time-col", help="Column of times: epoch seconds "
                                          "or ISO 8601 (UTC unless it names a zone).")],
    device_col: Annotated[str, typer.Option("--device-col", help="Column of device ids.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated channel columns "
                                                "(default: every numeric column).")] = None,
    site: Annotated[str, typer.Option(help="Site the devices publish under.")] = "s0",
    speed: Annotated[float | None, typer.Option(help="Times the recorded pace (default: as "
                                                "fast as the broker takes it).")] = None,
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS of readings.")] = 1,
    batch: Annotated[int, typer.Option(min=1, help="Readings per message (consecutive "
                                       "readings of one device).")] = 1,
    layout: LayoutOpt = "columns",
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = "fleet",
    metrics_interval: MetricsOpt = 1.0,
    username: UserOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Replay a CSV file as readings, in time order, one reading per row; stop when done."""
    file = _resolve_data_path(file)
    if speed is not None and not speed > 0:
        raise UsageProblem("--speed must be > 0")
    topics, address = _topics(prefix), _address(broker, username, password)
    try:
        config = ReplayConfig(
            path=file, time_col=time_col, device_col=device_col, site=check_site(site),
            columns=None if columns is None else _names(columns, "--columns"), speed=speed,
            qos=qos, batch=batch, layout=layout, metrics_interval=metrics_interval,
        )
        replay = Replay(config, topics, address)
    except ValueError as exc:  # the CSV or an option does not fit: say which, in one line
        raise UsageProblem(str(exc)) from None
    _serve(replay)
    left_out = "".join(f"; left out {c!r} ({why})" for c, why in replay.plan.skipped.items())
    print(f"fleetlearn: published {replay.published} of {replay.total} readings from "
          f"{len(replay.plan.devices)} devices{left_out}", file=sys.stderr)


@app.command()
def gateway(
    id: Annotated[str, typer.Option("--id", help="Node id of this gateway.")] = "gw-0",
    partition: Annotated[str, typer.Option(help="'all', 'sites:s0,s1', 'devices:d1,d2' or "
                                           "'bucket:I/K'.")
                         ] = "all",
    features: Annotated[str, typer.Option(help="Comma-separated feature channels.")
                        ] = "temperature,humidity,pressure",
    target: Annotated[str, typer.Option(help="Target channel.")] = "power",
    kind: KindOpt = "regression",
    sync_every: Annotated[int, typer.Option(min=1, help="Samples between updates.")] = 200,
    sync_interval: Annotated[float, typer.Option(min=0.01, help="Max seconds between updates."
                                                 )] = 1.0,
    optimizer: OptimizerOpt = "adagrad",
    lr: LrOpt = None,
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty on standardised weights.")
                  ] = 0.0,
    clip: Annotated[float, typer.Option(min=1e-6, help="Clip of the standardised error.")
                    ] = 3.0,
    allowlist: Annotated[Path | None, typer.Option(help="File of allowed device ids, one a "
                                                   "line (default: any device).")] = None,
    max_age: Annotated[float, typer.Option(min=0.0, help="Seconds a reading's timestamp may "
                                           "lag our clock (0: no limit, for replays).")] = 300.0,
    max_skew: Annotated[float, typer.Option(min=0.0, help="Seconds it may lead our clock "
                                            "(0: no limit).")] = 60.0,
    impute_max_age: Annotated[float, typer.Option(min=0.0, help="Seconds a value may be old "
                                                  "and still fill a gap (0: no limit).")
                              ] = 300.0,
    reorder_window: Annotated[int, typer.Option(min=1, help="Sequence numbers a late reading "
                                                "may trail by.")] = 64,
    impute: Annotated[str, typer.Option(help="Fill a missing feature with its 'last' value, "
                                        "its 'mean', or 'none'.")] = "last",
    outliers: Annotated[str, typer.Option(help="'median' (replace), 'clip', 'reject' or "
                                          "'none'.")] = "median",
    z: Annotated[float, typer.Option(min=0.1, help="Robust deviations that make an outlier.")
                 ] = 5.0,
    smooth: Annotated[float | None, typer.Option(min=0.001, max=1.0, help="EMA weight of a new "
                                                 "value (default: no smoothing).")] = None,
    drift_detector: Annotated[str, typer.Option(help="Watches the prequential error for a "
                                                "rise: 'adwin' or 'page-hinkley'.")] = "adwin",
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = "fleet",
    metrics_interval: MetricsOpt = 1.0,
    quality_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between per-device "
                                                    "data-quality summaries.")] = 10.0,
    username: UserOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Clean the readings of a partition and learn from them; sync with the aggregator."""
    from gateway.service import Gateway, GatewayConfig  # numba and river: gateways only
    from learners.optim import make_optimizer

    try:
        check_id(id, "gateway id")
        cleaning = CleaningConfig(
            allowlist=_read_allowlist(allowlist) if allowlist else None,
            max_age=_no_limit(max_age), max_skew=_no_limit(max_skew),
            reorder_window=reorder_window,
            policy=ChannelPolicy(impute=impute, max_age=_no_limit(impute_max_age),
                                 outliers=outliers, z=z, smooth=smooth),
        )
        config = GatewayConfig(
            node_id=id, partition=Partition.parse(partition),
            spec=FeatureSpec(_names(features, "--features"), target), kind=kind,
            optimizer=make_optimizer(optimizer, lr), l2=l2, clip=clip,
            sync_every=sync_every, sync_interval=sync_interval,
            metrics_interval=metrics_interval, quality_interval=quality_interval,
            cleaning=cleaning, drift_detector=drift_detector,
        )

    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    _serve(Gateway(config, _topics(prefix), _address(broker, username, password)))


def _default_state_dir(prefix: str, node: str) -> Path:
    """Where an aggregator keeps its checkpoints unless told: per deployment prefix and node."""
    root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return root / "fleetlearn" / prefix.replace("/", "_") / node


@app.command()
def aggregator(
    strategy: Annotated[str, typer.Option(help="'sync' (FedAvg rounds), 'fedasync' (mix each "
                                          "update in) or 'fedbuff' (merge every --buffer).")
                        ] = "sync",
    quorum: Annotated[int, typer.Option(min=0, help="Updates that close a sync round, less the "
                                        "learners whose status is offline (0: every live "
                                        "learner).")] = 0,
    round_timeout: Annotated[float, typer.Option(min=0.01, help="Seconds a round (or a "
                                                 "buffer) waits for its quorum.")] = 2.0,
    merge: Annotated[str, typer.Option(help="'mean' (sample-weighted), or robust: 'median' "
                                       "(coordinate-wise) or 'trimmed'.")] = "mean",
    trim: Annotated[float, typer.Option(min=0.0, max=0.49, help="Share trimmed at each end "
                                        "by --merge trimmed.")] = 0.2,
    clip_norm: Annotated[float | None, typer.Option(min=1e-9, help="Clip each learner's change "
                                                    "to this norm (standardised units).")
                         ] = None,
    max_staleness: Annotated[int, typer.Option(min=0, help="Async: versions an update may be "
                                               "behind.")] = 8,
    alpha: Annotated[float, typer.Option(min=1e-6, max=1.0, help="fedasync: mixing weight.")
                     ] = 0.6,
    staleness: Annotated[str, typer.Option(help="Async staleness weight: 'constant', "
                                           "'polynomial' or 'hinge'.")] = "polynomial",
    staleness_a: Annotated[float, typer.Option(min=0.0, help="Its a.")] = 0.5,
    staleness_b: Annotated[int, typer.Option(min=0, help="Hinge: versions with full weight.")
                           ] = 4,
    buffer: Annotated[int, typer.Option(min=1, help="fedbuff: updates per merge.")] = 4,
    server_lr: Annotated[float, typer.Option(min=1e-9, help="fedbuff: server step.")] = 1.0,
    momentum: Annotated[float, typer.Option(min=0.0, max=0.99, help="Server momentum "
                                            "(0: none).")] = 0.0,
    max_samples: Annotated[int, typer.Option(min=1, help="Largest n an update may claim.")
                           ] = 1_000_000,
    drift_policy: Annotated[str, typer.Option(help="On a learner's drift flag: 'none', "
                                              "'rescale' (standardise by the new data) or "
                                              "'reset' (forget the old weights too).")
                            ] = "rescale",
    drift_cooldown: Annotated[int, typer.Option(min=0, help="Versions after a drift reaction "
                                                "that ignore further flags.")] = 5,
    rollback_factor: Annotated[float, typer.Option(min=0.0, help="Roll back a merge whose "
                                                   "federated loss is this many times the last "
                                                   "good one (0: never).")] = 3.0,
    rollback_min_samples: Annotated[int, typer.Option(min=1, help="Samples that must back a "
                                                      "version's loss before it is judged.")
                                    ] = 50,
    state_dir: Annotated[Path | None, typer.Option(help="Checkpoint directory (default: "
                                                   "~/.local/state/fleetlearn/PREFIX/ID).")
                         ] = None,
    checkpoints: Annotated[bool, typer.Option(help="Write a checkpoint after every model.")
                           ] = True,
    keep: Annotated[int, typer.Option(min=1, help="Checkpoints kept.")] = 3,
    id: Annotated[str, typer.Option("--id", help="Node id.")] = "aggregator",
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = "fleet",
    metrics_interval: MetricsOpt = 1.0,
    username: UserOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Merge learner updates (FedAvg, async or robust) and broadcast versioned models."""
    topics = _topics(prefix)
    try:
        federation = FederationConfig(
            strategy=strategy, quorum=quorum, round_timeout=round_timeout,
            merge_rule=MergeRule(merge, trim, clip_norm), max_staleness=max_staleness,
            alpha=alpha, staleness=Staleness(staleness, staleness_a, staleness_b),
            buffer=buffer, server_lr=server_lr, momentum=momentum, max_samples=max_samples,
            drift_policy=drift_policy, drift_cooldown=drift_cooldown,
            rollback_factor=rollback_factor, rollback_min_samples=rollback_min_samples)
        config = AggregatorConfig(
            node_id=check_id(id), federation=federation, keep=keep,
            state_dir=(state_dir or _default_state_dir(topics.prefix, id)) if checkpoints
            else None, metrics_interval=metrics_interval)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    _serve(Aggregator(config, topics, _address(broker, username, password)))


@app.command()
def predict(
    sites: Annotated[str, typer.Option(help="Comma-separated sites (default: all).")] = "",
    id: Annotated[str, typer.Option("--id", help="Node id.")] = "predictor",
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = "fleet",
    metrics_interval: MetricsOpt = 1.0,
    username: UserOpt = None,
    password: PasswordOpt = None,
) -> None:
    """Predict every reading with the current model; publish it with the model version."""
    from gateway.predictor import Predictor, PredictorConfig

    config = PredictorConfig(node_id=check_id(id), metrics_interval=metrics_interval,
                             sites=tuple(s for s in sites.split(",") if s))
    _serve(Predictor(config, _topics(prefix), _address(broker, username, password)))


# ---------------------------------------------------------------------------- up


@app.command()
def up(
    ctx: typer.Context,
    duration: Annotated[float | None, typer.Option(min=0.001, help="Seconds the fleet runs "
                                                   "(default: until Ctrl-C, or the end of "
                                                   "a replay).")] = None,
    devices: Annotated[int, typer.Option(min=1, help="Simulated devices.")] = 20,
    sites: Annotated[int, typer.Option(min=1, help="Sites.")] = 2,
    gateways: Annotated[int, typer.Option(min=1, help="Gateway processes.")] = 2,
    rate: Annotated[float, typer.Option(min=0.001, help="Readings per second.")] = 1000.0,
    batch: Annotated[int, typer.Option(min=1, help="Readings per message.")] = 1,
    layout: LayoutOpt = "columns",
    qos: Annotated[int, typer.Option(min=0, max=1, help="QoS of readings.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the fleet.")] = 0,
    sync_every: Annotated[int, typer.Option(min=1, help="Samples between updates.")] = 200,
    sync_interval: Annotated[float, typer.Option(min=0.01, help="Max seconds between updates."
                                                 )] = 1.0,
    features: Annotated[str | None, typer.Option(help="Comma-separated features (default: the "
                                                 "simulated fleet's channels).")] = None,
    target: Annotated[str | None, typer.Option(help="Target channel (default: the simulated "
                                               "fleet's).")] = None,
    kind: KindOpt = "regression",
    optimizer: OptimizerOpt = "adagrad",
    lr: LrOpt = None,
    file: Annotated[Path | None, typer.Option("--replay", help="Replay this CSV file instead "
                                              "of simulating a fleet.")] = None,
    time_col: Annotated[str, typer.Option(help="Replay: the time column.")] = "time",
    device_col: Annotated[str, typer.Option(help="Replay: the device column.")] = "device",
    columns: Annotated[str | None, typer.Option(help="Replay: channel columns (default: "
                                                "every numeric one).")] = None,
    site: Annotated[str, typer.Option(help="Replay: the devices' site.")] = "s0",
    speed: Annotated[float | None, typer.Option(min=1e-9, help="Replay: times the recorded "
                                                "pace (default: as fast as it goes).")] = None,
    faults: Annotated[str, typer.Option(help="Fault rates for the fleet, e.g. 'all=0.05' "
                                        "(see `devices simulate --help`).")] = "",
    drift_at: Annotated[float | None, typer.Option(min=0.0, help="Seconds into the run when "
                                                   "the hidden truth changes.")] = None,
    strategy: Annotated[str | None, typer.Option(help="The aggregator's strategy (see "
                                                 "`aggregator --help`; default: sync).")] = None,
    merge: Annotated[str | None, typer.Option(help="The aggregator's merge rule (default: "
                                              "mean).")] = None,
    drift_policy: Annotated[str | None, typer.Option(help="The aggregator's drift policy "
                                                     "(default: rescale).")] = None,
    broker: Annotated[str | None, typer.Option(help="Use this broker HOST:PORT instead of "
                                               "starting one.")] = None,
    prefix: PrefixOpt = "fleet",
    report: Annotated[Path | None, typer.Option(help="Write the summary as JSON here.")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Where the nodes' logs go.")] = None,
    quiet: Annotated[bool, typer.Option(help="No live progress.")] = False,
) -> None:
    """Run a whole local deployment: broker, aggregator, gateways, predictor and fleet."""
    from fleetlearn.deploy.display import ProgressView, summary_table
    from fleetlearn.deploy.up import LocalDeployment, UpSettings

    try:
        replay = None
        if file is not None:
            replay = ReplayConfig(path=_resolve_data_path(file), time_col=time_col,
                                  device_col=device_col, site=check_site(site), speed=speed,
                                  columns=None if columns is None else _names(columns,
                                                                              "--columns"))
        settings = UpSettings(
            devices=devices, sites=sites, gateways=gateways, rate=rate, batch=batch,
            layout=layout, qos=qos, seed=seed, duration=duration, prefix=_topics(prefix).prefix,
            broker=_address(broker) if broker else None, sync_every=sync_every,
            sync_interval=sync_interval, features=features, target=target, kind=kind,
            optimizer=optimizer, lr=lr, replay=replay, config=ctx.obj,
            faults=faults, drift_at=drift_at, log_dir=log_dir, strategy=strategy,
            merge=merge, drift_policy=drift_policy,
        )
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    console = Console(stderr=False)
    view = ProgressView(console, quiet=quiet)
    deployment = LocalDeployment(settings, progress=view)
    if not quiet:
        console.print(f"fleetlearn up: logs in {deployment.log_dir}; Ctrl-C to stop")
    try:
        result = deployment.run()
    finally:
        view.close()
    console.print(summary_table(result))
    if report is not None:
        report.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        console.print(f"report written to {report}")


def _counts(text: str, what: str) -> tuple[int, ...]:
    """``2,8,32`` as numbers, each at least 1."""
    try:
        counts = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise UsageProblem(f"{what} must be comma-separated whole numbers >= 1, not {text!r}")
    return counts


@app.command()
def bench(
    scenario: Annotated[list[str] | None, typer.Option(help="Scenario to run (repeatable): "
                                                       "cleaning, learning, ingest, sync, "
                                                       "scale, memory, drift (default: all).")
                        ] = None,
    n: Annotated[int | None, typer.Option(min=10, help="cleaning / learning: readings per "
                                          "measurement (default: cleaning 50,000; learning "
                                          "the whole weather stream).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="cleaning / learning / ingest / scale (2 "
                                         "gateways vs 1): runs per figure; the best counts.")
                       ] = 3,
    ingest_n: Annotated[int, typer.Option(min=10, help="ingest: single readings per run."
                                          )] = 40_000,
    batch_n: Annotated[int, typer.Option(min=20, help="ingest: readings per run in batches "
                                         "of 20.")] = 200_000,
    learners: Annotated[str, typer.Option(help="sync: numbers of learners.")] = "2,8,32",
    rounds: Annotated[int, typer.Option(min=1, help="sync: measured rounds each.")] = 50,
    scale_n: Annotated[int, typer.Option(min=20, help="scale: readings per run (at least 40 "
                                         "per device are sent).")] = 200_000,
    devices: Annotated[str, typer.Option(help="scale: numbers of devices.")
                       ] = "100,1000,10000",
    memory_n: Annotated[int, typer.Option(min=20, help="memory: readings before the RSS is "
                                          "read (the issue's figure: 1000000).")] = 200_000,
    soak: Annotated[float, typer.Option(min=0.0, help="memory: seconds of a soak at 1,000 "
                                        "readings/s for the RSS slope (0: none; the issue's "
                                        "figure: 600).")] = 0.0,
    drift_repeats: Annotated[int, typer.Option(min=1, help="drift: runs of the three policies "
                                               "(30 s each).")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the rows as JSON.")
                        ] = None,
    markdown_out: Annotated[Path | None, typer.Option("--markdown", help="Write a markdown "
                                                      "section for docs/benchmarks.md.")
                            ] = None,
) -> None:
    """Measure fleetlearn against a baseline of the same run, and print the ratios."""
    import datetime

    from rich.table import Table

    from fleetlearn.bench import SCENARIOS
    from fleetlearn.bench import scenario as scenario_function
    from fleetlearn.bench.report import by_scenario, markdown

    names = scenario or list(SCENARIOS)
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise UsageProblem(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    sizes = {"n": n} if n else {}
    options = {
        "cleaning": {**sizes, "repeats": repeats}, "learning": {**sizes, "repeats": repeats},
        "ingest": {"n": ingest_n, "batch_n": batch_n, "repeats": repeats},
        "sync": {"learners": _counts(learners, "--learners"), "rounds": rounds},
        "scale": {"n": scale_n, "devices": _counts(devices, "--devices"), "repeats": repeats},
        "memory": {"n": memory_n, "soak": soak},
        "drift": {"repeats": drift_repeats},
    }
    console, status = Console(), Console(stderr=True)
    rows = []
    with status.status("fleetlearn bench") as spinner:
        for name in names:
            spinner.update(f"fleetlearn bench: {name}")
            rows += scenario_function(name)(progress=lambda text: spinner.update(text),
                                    **options[name])
    for name, (keys, cells) in by_scenario(rows).items():
        table = Table(title=f"{name} (ratio = fleetlearn / baseline, same run)",
                      title_justify="left")
        for key in keys:
            table.add_column(key, justify="left" if key in ("stream", "baseline") else "right")
        for row in cells:
            table.add_row(*row)
        console.print(table)
    if json_out is not None:
        json_out.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    if markdown_out is not None:
        command = " ".join(["fleetlearn", *sys.argv[1:]]) if sys.argv[1:] else "fleetlearn bench"
        markdown_out.write_text(markdown(rows, command, datetime.date.today().isoformat()))


# ---------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every expected failure into one line on stderr."""
    logging.basicConfig(level=os.environ.get("FLEETLEARN_LOG", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from fleetlearn.deploy.up import DeploymentError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="fleetlearn", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors and bad option values
        print(f"fleetlearn: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("fleetlearn: interrupted", file=sys.stderr)
        sys.exit(130)
    except (BrokerUnreachable, BrokerError, DeploymentError, TopicError, ValueError,
            OSError) as exc:
        print(f"fleetlearn: error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
