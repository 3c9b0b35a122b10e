"""What every command shares: the connection options, reading a default from the dataclass that
owns it, turning bad input into one line, and serving a service until it is told to stop.

>>> from broker.topics import Topics
>>> default(Topics, "prefix")
'fleet'
>>> names("a, b,,c", "--features")
('a', 'b', 'c')
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from broker.address import BrokerAddress
from broker.processes import die_with_parent, orphaned
from broker.topics import TopicError, Topics, check_id
from fleetlearn.commands.logs import set_node
from fleetlearn.metrics.settings import ExporterConfig
from gateway.local_time import LocalTime
from learners.model_admission import ModelBounds

UsageProblem = typer.BadParameter  # a bad option value: one line, exit code 2


def default(owner: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``owner``: an option's one home."""
    for f in dataclasses.fields(owner):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise LookupError(f"{owner.__name__}.{name} has no default")


DEFAULT_BROKER = str(BrokerAddress())
DEFAULT_PREFIX = default(Topics, "prefix")

BrokerOpt = Annotated[str, typer.Option("--broker", envvar="FLEETLEARN_BROKER",
                                        help="Broker address: HOST:PORT, mqtt://HOST:PORT, or "
                                             "mqtts://HOST:PORT for TLS (port 8883 unless "
                                             "given).")]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="Topic prefix of the deployment.",
                                        envvar="FLEETLEARN_PREFIX")]
UserOpt = Annotated[str | None, typer.Option("--username", envvar="FLEETLEARN_USERNAME",
                                             help="Broker user name.")]
PasswordOpt = Annotated[str | None, typer.Option(  # no default shown: [broker] may set one
    "--password", envvar="FLEETLEARN_PASSWORD", show_default=False,
    help="Broker password (better: the env var, or [broker] password in the config file).")]
TlsCaOpt = Annotated[str | None, typer.Option(
    "--tls-ca", envvar="FLEETLEARN_TLS_CA", help="CA file (PEM) that signed the broker's "
    "certificate; implies TLS (default with mqtts://: the system's CAs).")]
TlsCertOpt = Annotated[str | None, typer.Option(
    "--tls-cert", envvar="FLEETLEARN_TLS_CERT", help="Client certificate (PEM), for a broker "
    "that asks for one (mutual TLS); implies TLS.")]
TlsKeyOpt = Annotated[str | None, typer.Option(
    "--tls-key", envvar="FLEETLEARN_TLS_KEY", help="The client certificate's private key "
    "(PEM; default: in the --tls-cert file).")]
GiveUpOpt = Annotated[float | None, typer.Option(
    "--give-up-after", min=0.001, help="Seconds a lost broker is tried again before the node "
    "stops with exit code 1 (default: for ever).")]
MetricsOpt = Annotated[float, typer.Option("--metrics-interval", min=0.05,
                                           help="Seconds between metrics messages.")]
MetricsPortOpt = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, max=65535, help="Serve Prometheus metrics on this port at "
    "/metrics (default: none; 0: any free port).")]
MetricsHostOpt = Annotated[str, typer.Option(
    "--metrics-host", help="Address the /metrics endpoint listens on (0.0.0.0: every "
    "interface).")]
#: Where the endpoint options' defaults live (for a command's OWNERS).
EXPORTER_OWNERS: dict[str, tuple[type, str]] = {
    "metrics_port": (ExporterConfig, "port"), "metrics_host": (ExporterConfig, "host")}
KindOpt = Annotated[str, typer.Option(help="'regression', or 'binary' (logistic; targets 0/1).")]
OptimizerOpt = Annotated[str, typer.Option(help="'adagrad', 'rmsprop' or 'sgd'.")]
def _lr(value: str | None) -> float | str | None:
    from learners.steps import parse_lr  # light: numpy only

    try:
        return parse_lr(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


LrOpt = Annotated[str | None, typer.Option(
    callback=_lr, help="Learning rate, or 'auto': chosen online among shadow learners of "
    "steps around the default, by the fleet's prequential loss (default: the optimizer's: "
    "adagrad 0.3, rmsprop 0.01, sgd 0.01).")]


ClassWeightOpt = Annotated[str, typer.Option(
    "--class-weight", help="Binary tasks: each class's weight in the log-loss: 'none', "
    "'balanced' (n / (2 n_class), from the running class counts) or '0:W0,1:W1'.")]
ThresholdOpt = Annotated[str, typer.Option(
    help="Binary tasks: the probability at or above which a prediction says 1, in the "
    "accuracies; 'auto': tuned online for balanced accuracy.")]
TimezoneOpt = Annotated[str, typer.Option(
    help="The time zone of hour_*/doy_* features: an IANA name (America/New_York) or an offset "
    "(+05:30); UTC by default.")]
TimezonesOpt = Annotated[str | None, typer.Option(
    help="Time zones by site or device, over --timezone: 'NAME=ZONE,NAME=ZONE' ([task.timezones] "
    "in the config file; a device's wins over its site's).")]


def local_time(timezone: str, timezones: str | None) -> LocalTime:
    """The local time the options describe.

    >>> local_time("UTC", "jfk=America/New_York, d7=+01:00").zones
    {'jfk': 'America/New_York', 'd7': '+01:00'}
    """
    zones = {}
    for part in (timezones or "").split(","):
        if not part.strip():
            continue
        name, sep, zone = part.partition("=")
        if not sep or not name.strip() or not zone.strip():
            raise UsageProblem(f"--timezones takes NAME=ZONE pairs, not {part.strip()!r}")
        zones[name.strip()] = zone.strip()
    try:
        return LocalTime(timezone, zones)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


PersonalizeOpt = Annotated[str, typer.Option(
    "--personalize", help="Personal parts beside the global model: 'site' (one per site of "
    "a gateway), 'device' (one per device) or 'none'; each mixes its own model with the "
    "global one by the weights that predicted its readings best (binary tasks: in log-odds).")]
LayoutOpt = Annotated[Literal["columns", "rows"], typer.Option(
    help="How a message of more than one reading (--batch > 1) is written: 'columns' (one "
         "JSON object, each channel a list: every key once per message, smaller) or 'rows' "
         "(a JSON array of reading objects).")]

VersionJumpOpt = Annotated[int, typer.Option(
    "--max-version-jump", min=0, help="Versions a model may be above the current one; a larger "
    "jump is held until a model follows it (0: no bound).")]
MagnitudeOpt = Annotated[float, typer.Option(
    "--max-model-magnitude", min=1e-9, help="Largest absolute weight, intercept or feature "
    "mean a model may carry (raw units).")]
#: Where the model-admission options' defaults live (for a command's OWNERS).
MODEL_OWNERS: dict[str, tuple[type, str]] = {
    "max_version_jump": (ModelBounds, "max_version_jump"),
    "max_model_magnitude": (ModelBounds, "max_magnitude")}

#: Options of every node command that belong to the connection, not to a domain dataclass.
CONNECTION_OPTIONS = frozenset({"broker", "prefix", "username", "password", "give_up_after",
                                "tls_ca", "tls_cert", "tls_key"})


def address(broker: str, username: str | None = None, password: str | None = None,
            tls_ca: str | None = None, tls_cert: str | None = None,
            tls_key: str | None = None) -> BrokerAddress:
    """The connection the options describe; a TLS file makes it TLS (``mqtt://`` with one is a
    contradiction).

    >>> address("b:8883", "u", "pw", tls_ca="ca.pem")
    BrokerAddress(host='b', port=8883, username='u', tls=True, ca='ca.pem', cert=None, key=None)
    >>> address("mqtt://b", tls_ca="ca.pem")
    Traceback (most recent call last):
    typer._click.exceptions.BadParameter: mqtt://b is a plain connection: use mqtts:// with --tls-ca
    """
    try:
        parsed = BrokerAddress.parse(broker)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    files = {"ca": tls_ca or None, "cert": tls_cert or None, "key": tls_key or None}
    given = [name for name, path in files.items() if path is not None]
    if given and broker.startswith("mqtt://"):
        raise UsageProblem(f"{broker} is a plain connection: use mqtts:// with --tls-{given[0]}")
    return dataclasses.replace(parsed, username=username or None, password=password,
                               tls=parsed.tls or bool(given), **files)


def topics(prefix: str) -> Topics:
    try:
        return Topics(prefix)
    except TopicError as exc:
        raise UsageProblem(str(exc)) from None


def names(text: str, what: str) -> tuple[str, ...]:
    found = tuple(n.strip() for n in text.split(",") if n.strip())
    if not found:
        raise UsageProblem(f"{what} needs at least one channel name")
    return found


def resolve_data_path(path: Path) -> Path:
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


def no_limit(seconds: float) -> float:
    """0 on the command line means no limit."""
    return float("inf") if seconds == 0 else seconds


def read_allowlist(path: Path) -> frozenset[str]:
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise UsageProblem(f"cannot read the allowlist {path}: {exc.strerror}") from None
    return frozenset(check_id(line, "device id in the allowlist") for line in lines)


def serve(service: Any, give_up_after: float | None = None,
          metrics: ExporterConfig | None = None) -> None:
    """Run a service until SIGTERM/SIGINT, or until it has been ``give_up_after`` seconds
    without its broker (:class:`~broker.address.BrokerUnreachable`: exit code 1); with a
    ``metrics`` port, its latest metrics on ``/metrics`` meanwhile (:mod:`fleetlearn.metrics`).

    Under ``$FLEETLEARN_PARENT_PID`` (the `up` that started it) it also stops when that
    process is gone: the OS sends SIGTERM (parent-death signal), and a 1 s check in the loop
    covers a system without one (the loop turns while the broker is away too).
    """
    set_node(service.node_id)  # the node of every line this process logs
    for node in (service.node, *service.companions):
        node.backoff.give_up_after = give_up_after
    parent = os.environ.get("FLEETLEARN_PARENT_PID")
    if parent and parent.isdigit():
        die_with_parent()
        service.node.every(1.0, lambda: orphaned(int(parent)) and service.stop())
        if orphaned(int(parent)):  # it died before the OS was told
            return
    exporter = None
    if metrics is not None and metrics.port is not None:
        from fleetlearn.metrics.exporter import node_exporter  # prometheus_client: only then

        try:
            exporter = node_exporter(service, metrics)
        except OSError as exc:
            raise UsageProblem(f"cannot serve /metrics on {metrics.host} port {metrics.port}: "
                               f"{exc.strerror or exc}") from None
    try:
        service.run()
    finally:
        if exporter is not None:
            exporter.close()


def default_state_dir(prefix: str, node: str, broker: BrokerAddress,
                      root: Path | None = None) -> Path:
    """Where a node (an aggregator, a gateway) keeps its checkpoints unless told: per
    deployment (its broker and prefix) and node, so deployments on two brokers never share a
    checkpoint. ``root``: ``$XDG_STATE_HOME``, else ``~/.local/state``.

    >>> where = default_state_dir("fleet/a", "agg", BrokerAddress("::1", 1884), Path("/s"))
    >>> where.as_posix()
    '/s/fleetlearn/__1_1884/fleet_a/agg'
    """
    if root is None:
        root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    where = re.sub(r"[^A-Za-z0-9._-]", "_", f"{broker.host}_{broker.port}")
    return root / "fleetlearn" / where / prefix.replace("/", "_") / node
