"""The `fleetlearn` command: one subcommand per process kind, plus `up` for all of them.

This module only assembles the app from :mod:`fleetlearn.commands` (one module per command)
and reads the ``--config`` file whose values become every option's default. Misuse gets one
line on stderr and a non-zero exit, never a traceback. The gateway's service module is imported
by its command only when it runs: every node is a process of this CLI, and only a gateway needs
numba and river (measured with ``fleetlearn bench --scenario memory``: ~180 MiB a node with
them, ~55 MiB without).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from broker.address import BrokerRefused, BrokerUnreachable
from broker.mosquitto import BrokerError
from broker.topics import TopicError
from fleetlearn.commands import (
    aggregator,
    bench,
    broker,
    dashboard,
    devices,
    evaluate,
    gateway,
    keys,
    predict,
    up,
)
from fleetlearn.commands.common import UsageProblem
from fleetlearn.commands.logs import LOG_META, LogChoice, check_format, check_level, setup_logging
from fleetlearn.commands.report import report as report_command
from fleetlearn.config import DEFAULT_FILE, ConfigError, default_map, load_config
from gateway.task_check import EXIT_TASK_UNFIT, TaskUnfit
from learners.aggregator import TaskMismatch
from learners.checkpoint import CheckpointError

app = typer.Typer(
    help="Online federated learning from IoT sensor streams over MQTT.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
devices_app = typer.Typer(help="Simulated devices that publish readings.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")


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
    log_level: Annotated[str | None, typer.Option(
        "--log-level", envvar="FLEETLEARN_LOG",
        help="DEBUG, INFO, WARNING or ERROR (default: WARNING; the nodes `up` starts: INFO).")
    ] = None,
    log_format: Annotated[str, typer.Option(
        "--log-format", envvar="FLEETLEARN_LOG_FORMAT",
        help="'text', or 'json': one object per line (ts, level, logger, node, message and "
             "the line's fields), for log shippers.")] = "text",
) -> None:
    """Online federated learning from IoT sensor streams over MQTT."""
    try:
        level, fmt = check_level(log_level or "WARNING"), check_format(log_format)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    setup_logging(level, fmt)
    # what `up` hands its nodes: the format, and the level when one was asked for
    ctx.meta[LOG_META] = LogChoice(level if log_level else None, fmt)
    path = config if config is not None else Path(DEFAULT_FILE)
    if config is None and not path.is_file():
        return
    try:
        ctx.default_map = default_map(load_config(path))
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None
    ctx.obj = path.resolve()


app.command()(broker.broker)
devices_app.command("simulate")(devices.simulate)
devices_app.command("replay")(devices.replay)
app.command("report")(report_command)
app.command()(gateway.gateway)
app.command()(aggregator.aggregator)
app.command()(predict.predict)
app.command()(up.up)
app.command()(dashboard.dashboard)
app.command()(bench.bench)
app.command()(evaluate.evaluate)
app.add_typer(keys.app, name="keys")


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every expected failure into one line on stderr."""
    setup_logging()  # until the root command has read --log-level and --log-format
    from fleetlearn.deploy.up import DeploymentError, ReadingsUnaccounted

    command = typer.main.get_command(app)
    # SIGTERM unwinds like Ctrl-C, so what a command started (a benchmark's broker, its temp
    # files) is stopped and removed with it; services and `up` install their own handlers.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code = command.main(args=argv, prog_name="fleetlearn", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors and bad option values
        print(f"fleetlearn: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("fleetlearn: interrupted", file=sys.stderr)
        sys.exit(130)
    except ReadingsUnaccounted as exc:  # the run ended, its summary and report are out
        print(f"fleetlearn: {exc}", file=sys.stderr)
        sys.exit(3)
    except TaskUnfit as exc:  # a gateway found the task does not fit the stream; said once
        print(f"fleetlearn: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_TASK_UNFIT)
    except (BrokerUnreachable, BrokerRefused, BrokerError, DeploymentError, TopicError,
            CheckpointError, TaskMismatch, ValueError, OSError) as exc:
        print(f"fleetlearn: error: {exc}", file=sys.stderr)
        sys.exit(1)
    if code == 130:  # typer turns a KeyboardInterrupt into this code, silently
        print("fleetlearn: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
