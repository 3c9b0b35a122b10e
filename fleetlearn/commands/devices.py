"""`fleetlearn devices simulate|replay`: options -> :class:`~devices.fleet.FleetConfig` or
:class:`~devices.replay.ReplayConfig` -> a served fleet or replay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from broker.topics import check_id, check_site
from devices.faults import FaultRates
from devices.fleet import Fleet, FleetConfig
from devices.replay import Replay, ReplayConfig
from fleetlearn.commands.common import (
    DEFAULT_BROKER,
    DEFAULT_PREFIX,
    BrokerOpt,
    GiveUpOpt,
    LayoutOpt,
    MetricsOpt,
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
    serve,
    topics,
)

F, R = FleetConfig, ReplayConfig

#: A replay's time options, `devices replay`'s and `up`'s.
DateColOpt = Annotated[str | None, typer.Option(
    "--date-col", help="A separate column of dates; --time-col then holds the time of day "
    "(the two are read as 'DATE TIME').")]
TimeFormatOpt = Annotated[str | None, typer.Option(
    "--time-format", help="The times' strptime format, e.g. '%d/%m/%Y %H:%M' (default: epoch "
    "seconds or ISO 8601, e.g. 2013-01-01T06:00Z or 2013-01-01 06:00; UTC unless a zone is "
    "given).")]
SkipRowsOpt = Annotated[int, typer.Option("--skip-rows", min=0, help="Lines before the header "
                                          "row (a logger's preamble).")]
TzColOpt = Annotated[str | None, typer.Option(
    "--tz-col", help="A column naming each row's time zone (IANA name or offset): times "
    "without a zone are read in it, and it is the device's zone for hour_*/doy_*.")]

#: Where each option's default lives (option -> dataclass, field); tests hold them equal.
SIMULATE_OWNERS: dict[str, tuple[type, str]] = {
    name: (F, name) for name in ("devices", "sites", "seed", "rate", "batch", "layout", "qos",
                                 "duration", "drift_at", "metrics_interval", "send_buffer",
                                 "positives", "heterogeneity", "site")} | {"id": (F, "node_id")}
REPLAY_OWNERS: dict[str, tuple[type, str]] = {
    name: (R, name) for name in ("site", "speed", "qos", "batch", "layout", "metrics_interval",
                                 "date_col", "time_format", "skip_rows", "tz_col")}


def simulate(
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    devices: Annotated[int, typer.Option(min=1, help="Number of devices.")
                       ] = default(F, "devices"),
    sites: Annotated[int, typer.Option(min=1, help="Sites the devices are spread over.")
                     ] = default(F, "sites"),
    seed: Annotated[int, typer.Option(help="Seed of the fleet and its ground truth.")
                    ] = default(F, "seed"),
    rate: Annotated[float, typer.Option(min=0.001, help="Readings per second, all devices."
                                        )] = default(F, "rate"),
    batch: Annotated[int, typer.Option(min=1, help="Readings per message.")
                     ] = default(F, "batch"),
    layout: LayoutOpt = default(F, "layout"),
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS of readings.")
                   ] = default(F, "qos"),
    duration: Annotated[float | None, typer.Option(min=0.001, help="Seconds to run "
                                                   "(default: until Ctrl-C).")
                        ] = default(F, "duration"),
    faults: Annotated[str, typer.Option(help="Fault rates, e.g. 'all=0.05' or "
                                        "'spike=0.1,lost=0.02' (default: none).")] = "",
    drift_at: Annotated[float | None, typer.Option(min=0.0, help="Seconds into the run when "
                                                   "the hidden truth changes.")
                        ] = default(F, "drift_at"),
    positives: Annotated[float | None, typer.Option(
        min=1e-6, max=1 - 1e-6, help="A share of positives: every reading also carries a 0/1 "
        "channel 'event', 1 when its target is above the level that share of readings exceed "
        "(an imbalanced binary task).")] = default(F, "positives"),
    heterogeneity: Annotated[float, typer.Option(min=0.0, help="Each site's own ground truth "
                                                 "differs from the fleet's by this relative "
                                                 "size (0.2: its weights 20 % off).")
                             ] = default(F, "heterogeneity"),
    metrics_interval: MetricsOpt = default(F, "metrics_interval"),
    send_buffer: Annotated[int, typer.Option(min=1, help="Most QoS 1 messages waiting for the "
                                             "broker's acknowledgement; readings due while "
                                             "it is full are counted as send_buffer_full, "
                                             "not sent.")] = default(F, "send_buffer"),
    site: Annotated[str | None, typer.Option(
        help="Only site S's devices (of --devices over --sites): one fleet per site "
        "broker.")] = default(F, "site"),
    id: Annotated[str, typer.Option("--id", help="Node id.")] = default(F, "node_id"),
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
) -> None:
    """Simulate a fleet of sensors with a hidden linear ground truth (and, if asked, faults)."""
    try:
        config = FleetConfig(devices=devices, sites=sites, seed=seed, rate=rate, batch=batch,
                             layout=layout, qos=qos, duration=duration,
                             metrics_interval=metrics_interval,
                             faults=FaultRates.parse(faults) if faults else None,
                             drift_at=drift_at, send_buffer=send_buffer, positives=positives,
                             heterogeneity=heterogeneity,
                             site=None if site is None else check_site(site),
                             node_id=check_id(id))
        connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
        fleet = Fleet(config, topics(prefix), connection)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    serve(fleet, give_up_after)


def replay(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV file with a header row, or "
                                         "pkg:PACKAGE/PATH for one a package ships.")],
    time_col: Annotated[str, typer.Option("--time-col", help="Column of times: epoch seconds "
                                          "or ISO 8601 (UTC unless it names a zone).")],
    device_col: Annotated[str, typer.Option("--device-col", help="Column of device ids.")],
    date_col: DateColOpt = default(R, "date_col"),
    tz_col: TzColOpt = default(R, "tz_col"),
    time_format: TimeFormatOpt = default(R, "time_format"),
    skip_rows: SkipRowsOpt = default(R, "skip_rows"),
    columns: Annotated[str | None, typer.Option(help="Comma-separated channel columns "
                                                "(default: every numeric column).")] = None,
    site: Annotated[str, typer.Option(help="Site the devices publish under.")
                    ] = default(R, "site"),
    speed: Annotated[float | None, typer.Option(help="Times the recorded pace (default: as "
                                                "fast as the broker takes it).")
                     ] = default(R, "speed"),
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS of readings.")
                   ] = default(R, "qos"),
    batch: Annotated[int, typer.Option(min=1, help="Readings per message (consecutive "
                                       "readings of one device).")] = default(R, "batch"),
    layout: LayoutOpt = default(R, "layout"),
    broker: BrokerOpt = DEFAULT_BROKER,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    metrics_interval: MetricsOpt = default(R, "metrics_interval"),
    username: UserOpt = None,
    password: PasswordOpt = None,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    give_up_after: GiveUpOpt = None,
) -> None:
    """Replay a CSV file as readings, in time order, one reading per row; stop when done."""
    file = resolve_data_path(file)
    if speed is not None and not speed > 0:
        raise UsageProblem("--speed must be > 0")
    try:
        config = ReplayConfig(
            path=file, time_col=time_col, device_col=device_col, site=check_site(site),
            date_col=date_col, time_format=time_format, skip_rows=skip_rows, tz_col=tz_col,
            columns=None if columns is None else names(columns, "--columns"), speed=speed,
            qos=qos, batch=batch, layout=layout, metrics_interval=metrics_interval,
        )
        connection = address(broker, username, password, tls_ca, tls_cert, tls_key)
        service = Replay(config, topics(prefix), connection)
    except ValueError as exc:  # the CSV or an option does not fit: say which, in one line
        raise UsageProblem(str(exc)) from None
    serve(service, give_up_after)
    left_out = "".join(f"; left out {c!r} ({why})" for c, why in service.plan.skipped.items())
    print(f"fleetlearn: published {service.published} of {service.total} readings from "
          f"{len(service.plan.devices)} devices{left_out}", file=sys.stderr)
