"""`fleetlearn up`: options -> :class:`~fleetlearn.deploy.settings.UpSettings` -> a whole
local deployment (:mod:`fleetlearn.deploy`), its live view, summary and report.

`up` passes its nodes only what it decides: broker address, prefix, node ids, partitions, the
fleet's allowlist, the aggregator's state dir and how often nodes report; every other setting
reaches them through one config file it writes in the log dir: the `--config` file's sections
with the node settings given on `up`'s command line on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from broker.address import BrokerAddress
from broker.topics import check_site
from devices.fleet import FleetConfig
from devices.replay import ReplayConfig
from fleetlearn.commands.broker import default_secure_dir
from fleetlearn.commands.common import (
    DEFAULT_PREFIX,
    EXPORTER_OWNERS,
    LayoutOpt,
    LrOpt,
    MetricsHostOpt,
    MetricsPortOpt,
    PasswordOpt,
    PrefixOpt,
    TlsCaOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UsageProblem,
    UserOpt,
    address,
    default,
    names,
    resolve_data_path,
    topics,
)
from fleetlearn.commands.devices import DateColOpt, SkipRowsOpt, TimeFormatOpt, TzColOpt
from fleetlearn.commands.logs import LOG_META, LogChoice, check_level
from fleetlearn.deploy.bridged import BridgedDeployment
from fleetlearn.deploy.display import ProgressView, summary_table
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.up import LocalDeployment, ReadingsUnaccounted
from fleetlearn.metrics.settings import ExporterConfig
from gateway.task_check import TaskUnfit

F, R, U = FleetConfig, ReplayConfig, UpSettings

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
OWNERS: dict[str, tuple[type, str]] = {
    **EXPORTER_OWNERS,
    **{name: (F, name) for name in ("devices", "sites", "rate", "batch", "layout", "qos",
                                    "seed", "drift_at", "positives", "heterogeneity")},
    "send_buffer": (F, "send_buffer"),
    "gateways": (U, "gateways"), "drain_timeout": (U, "drain_timeout"), "site": (R, "site"),
    "secure": (U, "secure"), "dashboard": (U, "dashboard"), "topology": (U, "topology"),
    **{name: (R, name) for name in ("date_col", "time_format", "skip_rows", "tz_col")},
}


def up(
    ctx: typer.Context,
    duration: Annotated[float | None, typer.Option(min=0.001, help="Seconds the fleet runs, "
                                                   "from when it is online (default: until "
                                                   "Ctrl-C, or the end of a replay).")] = None,
    devices: Annotated[int, typer.Option(min=1, help="Simulated devices.")] = default(F, "devices"),
    sites: Annotated[int, typer.Option(min=1, help="Sites.")] = default(F, "sites"),
    gateways: Annotated[int, typer.Option(min=1, help="Gateway processes.")
                        ] = default(U, "gateways"),
    rate: Annotated[float, typer.Option(min=0.001, help="Readings per second.")
                    ] = default(F, "rate"),
    batch: Annotated[int, typer.Option(min=1, help="Readings per message.")
                     ] = default(F, "batch"),
    layout: LayoutOpt = default(F, "layout"),
    qos: Annotated[int, typer.Option(min=0, max=1, help="QoS of readings.")] = default(F, "qos"),
    seed: Annotated[int, typer.Option(help="Seed of the fleet.")] = default(F, "seed"),
    send_buffer: Annotated[int, typer.Option(min=1, help="The fleet's most QoS 1 messages "
                                             "waiting for the broker's acknowledgement; "
                                             "readings due while it is full are not sent, "
                                             "and counted.")] = default(F, "send_buffer"),
    drain_timeout: Annotated[float, typer.Option(min=0.0, help="Seconds to wait, once the "
                                                 "fleet has stopped, for the gateways to take "
                                                 "in every reading published; what is left "
                                                 "is reported, and `up` exits with code 3.")
                             ] = default(U, "drain_timeout"),
    sync_every: Annotated[int | None, typer.Option(min=1, help="Gateways: samples between "
                                                   "updates.")] = None,
    sync_interval: Annotated[float | None, typer.Option(min=0.01, help="Gateways: max seconds "
                                                        "between updates.")] = None,
    features: Annotated[str | None, typer.Option(help="Comma-separated features (default: the "
                                                 "simulated fleet's channels).")] = None,
    target: Annotated[str | None, typer.Option(help="Target channel (default: the simulated "
                                               "fleet's).")] = None,
    kind: Annotated[str | None, typer.Option(help="'regression' or 'binary' (default: "
                                               "the gateways').")] = None,
    optimizer: Annotated[str | None, typer.Option(help="The gateways' optimizer: 'adagrad', "
                                                  "'rmsprop' or 'sgd'.")] = None,
    lr: LrOpt = None,
    personalize: Annotated[str | None, typer.Option(
        help="The gateways' personal parts: 'site', 'device' or 'none'.")] = None,
    heterogeneity: Annotated[float, typer.Option(
        min=0.0, help="Each simulated site's own truth differs from the fleet's by this "
        "relative size.")] = default(F, "heterogeneity"),
    file: Annotated[Path | None, typer.Option("--replay", help="Replay this CSV file instead "
                                              "of simulating a fleet.")] = None,
    time_col: Annotated[str, typer.Option(help="Replay: the time column.")] = "time",
    device_col: Annotated[str, typer.Option(help="Replay: the device column.")] = "device",
    date_col: DateColOpt = default(R, "date_col"),
    time_format: TimeFormatOpt = default(R, "time_format"),
    skip_rows: SkipRowsOpt = default(R, "skip_rows"),
    tz_col: TzColOpt = default(R, "tz_col"),
    columns: Annotated[str | None, typer.Option(help="Replay: channel columns (default: "
                                                "every numeric one).")] = None,
    site: Annotated[str, typer.Option(help="Replay: the devices' site.")] = default(R, "site"),
    speed: Annotated[float | None, typer.Option(min=1e-9, help="Replay: times the recorded "
                                                "pace (default: as fast as it goes).")] = None,
    faults: Annotated[str, typer.Option(help="Fault rates for the fleet, e.g. 'all=0.05' "
                                        "(see `devices simulate --help`).")] = "",
    drift_at: Annotated[float | None, typer.Option(min=0.0, help="Seconds into the run when "
                                                   "the hidden truth changes.")
                        ] = default(F, "drift_at"),
    positives: Annotated[float | None, typer.Option(
        min=1e-6, max=1 - 1e-6, help="The fleet's share of positives in a 0/1 channel 'event' "
        "(see `devices simulate --help`).")] = default(F, "positives"),
    strategy: Annotated[str | None, typer.Option(help="The aggregator's strategy (see "
                                                 "`aggregator --help`; default: sync).")] = None,
    merge: Annotated[str | None, typer.Option(help="The aggregator's merge rule (default: "
                                              "mean).")] = None,
    drift_policy: Annotated[str | None, typer.Option(help="The aggregator's drift policy "
                                                     "(default: rescale).")] = None,
    broker: Annotated[str | None, typer.Option(
        envvar="FLEETLEARN_BROKER", help="Use this broker (HOST:PORT, mqtt://HOST:PORT or "
        "mqtts://HOST:PORT) instead of starting one; every node and up's own monitor connect "
        "to it with the options below.")] = None,
    secure: Annotated[bool, typer.Option(
        "--secure", help="Secure the deployment: its broker speaks TLS only, refuses "
        "anonymous clients and applies a per-role ACL; every node logs in as itself (its "
        "password in its environment), the aggregator signs models and each gateway its "
        "updates, and every receiver requires those signatures. The CA, passwords and keys "
        "are made under --secure-dir the first time and kept. Not with --broker.")
                  ] = default(U, "secure"),
    secure_dir: Annotated[Path | None, typer.Option(
        help="Where --secure keeps its CA, certificates, passwords, ACL and signing keys "
        "(default: $XDG_STATE_HOME/fleetlearn/secure/PREFIX, as `broker --secure`; re-runs "
        "keep them).")] = None,
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    report: Annotated[Path | None, typer.Option(help="Write the summary as JSON here, and "
                                                "beside it (.html) a page of plots of the "
                                                "run (see `fleetlearn report`).")] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Where the nodes' logs go.")] = None,
    log_level: Annotated[str | None, typer.Option(help="The nodes' log level (default: "
                                                  "`fleetlearn --log-level`'s, else INFO).")
                         ] = None,
    quiet: Annotated[bool, typer.Option(help="No live progress.")] = False,
    metrics_port: MetricsPortOpt = default(ExporterConfig, "port"),
    metrics_host: MetricsHostOpt = default(ExporterConfig, "host"),
    dashboard: Annotated[int | None, typer.Option(
        metavar="PORT", min=1, max=65535, help="Serve a live page of the run on "
        "http://127.0.0.1:PORT/ (model, error curves, nodes, rates, dead letters; see "
        "`fleetlearn dashboard`).")] = default(U, "dashboard"),
    topology: Annotated[str, typer.Option(
        help="flat: one broker; bridged: a core broker and a broker per site bridged to it, "
        "each site's nodes on its own broker and a site aggregator per site "
        "(docs/deployment.md).")] = default(U, "topology"),
) -> None:
    """Run a whole local deployment: broker, aggregator, gateways, predictor and fleet."""

    logs = ctx.meta.get(LOG_META, LogChoice())
    try:
        replay = None
        if file is not None:
            replay = ReplayConfig(path=resolve_data_path(file), time_col=time_col,
                                  device_col=device_col, site=check_site(site), speed=speed,
                                  date_col=date_col, time_format=time_format,
                                  skip_rows=skip_rows, tz_col=tz_col,
                                  columns=None if columns is None else names(columns,
                                                                              "--columns"))
        settings = UpSettings(
            devices=devices, sites=sites, gateways=gateways, rate=rate, batch=batch,
            layout=layout, qos=qos, seed=seed, duration=duration, prefix=topics(prefix).prefix,
            broker=_broker(broker, username, password, tls_ca, tls_cert, tls_key),
            secure=secure, secure_dir=secure_dir or (
                default_secure_dir(topics(prefix).prefix) if secure else None),
            sync_every=sync_every,
            sync_interval=sync_interval, features=features, target=target, kind=kind,
            optimizer=optimizer, lr=lr, personalize=personalize,
            heterogeneity=heterogeneity, replay=replay, config=ctx.obj,
            faults=faults, drift_at=drift_at, positives=positives, log_dir=log_dir,
            strategy=strategy,
            merge=merge, drift_policy=drift_policy, send_buffer=send_buffer,
            drain_timeout=drain_timeout, dashboard=dashboard, topology=topology,
            log_level=check_level(log_level or logs.level or "INFO"), log_format=logs.format,
        )
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    console = Console(stderr=False)
    view = ProgressView(console, quiet=quiet)
    kind = BridgedDeployment if settings.topology == "bridged" else LocalDeployment
    deployment = kind(settings, progress=view, on_drain=view.draining)
    exporter = _exporter(deployment, ExporterConfig(metrics_port, metrics_host))
    if not quiet:
        console.print(f"fleetlearn up: logs in {deployment.log_dir}; Ctrl-C to stop"
                      + (f"; metrics on {exporter.url}" if exporter else ""))
        if dashboard is not None:
            console.print(f"live page: http://127.0.0.1:{dashboard}/")
    try:
        result = deployment.run()
    except KeyboardInterrupt:  # a second Ctrl-C: everything was killed; say what is known
        view.close()
        deployment.abort()
        _write(report, deployment.report(), console)
        raise
    finally:
        view.close()
        if exporter is not None:
            exporter.close()
    console.print(summary_table(result))
    _write(report, result, console)
    if result["task_problem"]:  # found while the run drained: the summary is out, then exit 4
        raise TaskUnfit(result["task_problem"])
    if not result["accounted"]:
        r = result["readings"]
        raise ReadingsUnaccounted(
            f"{r['unaccounted']:,} of {r['published']:,} readings published are not accounted "
            f"for ({r['not_taken_in']:,} not taken in before the drain deadline of "
            f"{settings.drain_timeout:g} s); see the summary, "
            f"{report if report is not None else 'the report (--report)'} and the logs in "
            f"{deployment.log_dir}")


def _exporter(deployment: LocalDeployment, config: ExporterConfig):
    """The deployment's ``/metrics`` (from its monitor's state), if asked for one."""
    if config.port is None:
        return None
    from fleetlearn.metrics.exporter import deployment_exporter  # prometheus_client: only then

    try:
        return deployment_exporter(deployment.state, config)
    except OSError as exc:
        raise UsageProblem(f"cannot serve /metrics on {config.host} port {config.port}: "
                           f"{exc.strerror or exc}") from None


def _broker(broker: str | None, *login: str | None) -> BrokerAddress | None:
    """The broker given to `up`, with its login and TLS files; None: `up` starts its own
    (anonymous, plain), so a login without --broker is a mistake worth a line."""
    if broker:
        return address(broker, *login)
    names = ("--username", "--password", "--tls-ca", "--tls-cert", "--tls-key")
    given = [name for name, value in zip(names, login, strict=True) if value]
    if given:
        raise UsageProblem(f"{given[0]} is for a broker given with --broker (or "
                           "FLEETLEARN_BROKER); `up` starts its own without one")
    return None


def _write(report: Path | None, result: dict, console: Console) -> None:
    if report is not None:
        report.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        from fleetlearn.deploy.html_report import html_path, write_html  # draws: matplotlib

        page = html_path(report)
        write_html(result, page)
        console.print(f"report written to {report} and {page}")
