"""`fleetlearn broker`: a Mosquitto of fleetlearn's own until Ctrl-C or SIGTERM; with
``--secure``, TLS only, a password per node and device, and the ACL of ``broker/acl.py``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from broker.acl import NODE_USERS, gateway_ids
from broker.address import BrokerAddress
from broker.bridge import BridgeSpec, bridge_lines, site_bridge
from broker.mosquitto import BrokerError, MosquittoBroker
from broker.secure import SecureDir, SecureSetupError, generate
from devices.fleet import FleetConfig
from devices.simulator import FleetSimulator
from fleetlearn.commands.common import DEFAULT_PREFIX, PrefixOpt, default, topics
from fleetlearn.deploy.settings import UpSettings

#: Where each option's default lives (tests/unit/test_defaults.py).
OWNERS = {"port": (BrokerAddress, "port"), "gateways": (UpSettings, "gateways"),
          "devices": (FleetConfig, "devices"), "sites": (FleetConfig, "sites"),
          "bind": (BrokerAddress, "host"),
          "forward_readings": (BridgeSpec, "forward_readings"),
          "hierarchical": (BridgeSpec, "hierarchical")}


def default_secure_dir(prefix: str, root: Path | None = None) -> Path:
    """Where ``--secure`` keeps its files unless told: per topic prefix, under
    ``$XDG_STATE_HOME`` (else ``~/.local/state``).

    >>> default_secure_dir("fleet/a", Path("/s")).as_posix()
    '/s/fleetlearn/secure/fleet_a'
    """
    if root is None:
        root = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return root / "fleetlearn" / "secure" / prefix.replace("/", "_")


def how_to_connect(files: SecureDir, port: int, mutual: bool) -> str:
    """What ``broker --secure`` prints: where the CA and credentials are, and a node's options.

    >>> print(how_to_connect(SecureDir(Path("/s")), 8883, mutual=False))
    TLS only; CA: /s/ca.crt; users and passwords: /s/credentials.json
    a node connects with: --broker mqtts://127.0.0.1:8883 --tls-ca /s/ca.crt --username gw-0 \
--password (its password in /s/credentials.json)
    """
    line = (f"TLS only; CA: {files.ca_cert}; users and passwords: {files.credentials_file}\n"
            f"a node connects with: --broker mqtts://127.0.0.1:{port} --tls-ca {files.ca_cert} "
            f"--username gw-0 --password (its password in {files.credentials_file})")
    if mutual:
        line += (f" --tls-cert {files.client_cert('gw-0')} --tls-key {files.client_key('gw-0')}")
    return line


def broker(
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one).",
                                      min=0, max=65535)] = default(BrokerAddress, "port"),
    data_dir: Annotated[Path | None, typer.Option(help="Data and log dir (default: a temp dir).")
                        ] = None,
    secure: Annotated[bool, typer.Option(
        "--secure", help="TLS only, no anonymous client, a password per node and device and "
        "an ACL per role; makes the CA, certificates and credentials under --secure-dir the "
        "first time, and keeps them.")] = False,
    secure_dir: Annotated[Path | None, typer.Option(
        help="Where --secure keeps its CA, certificates, passwords and ACL (default: "
        "$XDG_STATE_HOME/fleetlearn/secure/PREFIX).")] = None,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    gateways: Annotated[int, typer.Option(min=0, help="With --secure: gateway credentials "
                                          "gw-0 .. gw-N-1.")] = default(UpSettings, "gateways"),
    devices: Annotated[int, typer.Option(min=0, help="With --secure: credentials for the "
                                         "simulated fleet's device ids (as `devices simulate "
                                         "--devices N --sites S` names them).")
                       ] = default(FleetConfig, "devices"),
    sites: Annotated[int, typer.Option(min=1, help="With --secure: sites of those devices.")
                     ] = default(FleetConfig, "sites"),
    device: Annotated[list[str] | None, typer.Option(
        help="With --secure: one more device credential (repeat the option).")] = None,
    host: Annotated[list[str] | None, typer.Option(
        help="With --secure: one more name or address the server certificate is valid for "
        "(besides 127.0.0.1 and localhost; repeat the option).")] = None,
    client_certs: Annotated[bool, typer.Option(
        "--client-certs", help="With --secure: mutual TLS; a client certificate per user "
        "(SECURE_DIR/clients/NAME.crt and .key), and the broker refuses clients without "
        "one.")] = False,
    bind: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every one; a core "
                                      "that site brokers reach must listen where they reach "
                                      "it).")] = default(BrokerAddress, "host"),
    site: Annotated[str | None, typer.Option(
        help="This broker is the broker of site S (with --bridge-to).")] = None,
    bridge_to: Annotated[str | None, typer.Option(
        help="HOST:PORT of the core broker: a bridge sends up the site's updates, node "
        "statuses, metrics and dead letters and brings down the model (QoS 1, a persistent "
        "session: what is owed queues while the link is down). With --secure: TLS with the "
        "deployment's CA, logged in as bridge-S.")] = None,
    forward_readings: Annotated[bool, typer.Option(
        "--forward-readings", help="With --bridge-to: the site's readings go up too (they "
        "stay at the site unless told).")] = default(BridgeSpec, "forward_readings"),
    bridged_site: Annotated[list[str] | None, typer.Option(
        help="With --secure, at the core: a bridge login (bridge-S) for site S (repeat the "
        "option).")] = None,
    hierarchical: Annotated[bool, typer.Option(
        "--hierarchical", help="With --bridge-to: only the site aggregator's update goes up; "
        "the core's model arrives as PREFIX/learn/global/model.")
                        ] = default(BridgeSpec, "hierarchical"),
) -> None:
    """Run a Mosquitto broker for fleetlearn on 127.0.0.1 until Ctrl-C."""
    files = None
    if (site is None) != (bridge_to is None):
        raise typer.BadParameter("--site and --bridge-to go together")
    if secure:
        simulated = FleetSimulator(devices, sites).devices if devices else []
        ids = [d.device for d in simulated] + list(device or [])
        where = secure_dir or default_secure_dir(prefix)
        try:
            files = generate(where, topics(prefix), gateways=gateways, devices=tuple(ids),
                             hosts=tuple(host or ()), client_certs=client_certs,
                             sites=(*([site] if site else []), *(bridged_site or [])))
        except SecureSetupError as exc:
            raise BrokerError(str(exc)) from None
    bridge = []
    if site is not None and bridge_to is not None:
        try:
            spec = site_bridge(site, bridge_to, forward_readings=forward_readings,
                               hierarchical=hierarchical, secure=files)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        bridge = bridge_lines(topics(prefix), spec)
    mosquitto = MosquittoBroker(port=port or None, data_dir=data_dir, secure=files, bind=bind,
                                require_certificate=client_certs, bridge=bridge)
    # SIGTERM unwinds like Ctrl-C (fleetlearn.cli), so the broker we started is stopped with us.
    # a SIGTERM may come as soon as the line is out: the print is inside the suppression too
    with mosquitto, contextlib.suppress(KeyboardInterrupt):
        print(f"mosquitto listening on {bind}:{mosquitto.port} (data: {mosquitto.data_dir})",
              flush=True)
        if bridge:
            print(f"bridged to {bridge_to} as site {site}", flush=True)
        if files is not None:
            users = [*NODE_USERS, *gateway_ids(gateways)]
            print(f"{how_to_connect(files, mosquitto.port, client_certs)}\n"
                  f"nodes: {', '.join(users)}; devices: {len(files.users()) - len(users)}",
                  flush=True)
        mosquitto.process.wait()
