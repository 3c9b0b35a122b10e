"""A site broker's bridge to the core: which topics cross, in which direction, and the
Mosquitto ``connection`` section that says so (pure: text out, no broker).

What goes up (out, QoS 1): the site's learner updates, node statuses (retained), metrics and
dead letters; with ``forward_readings`` the site's readings too. What comes down (in, QoS 1):
the model. A persistent bridge session (``cleansession false``) on both ends keeps what is owed
while the link is down: the site broker queues what goes up (up to its
``max_queued_messages``), the core what comes down. Readings, predictions, device statuses and
the presence topics (ping, claim, probe) stay at the site.

In a hierarchical site (``hierarchical``) only the site aggregator's update goes up, and the
core's model arrives as ``{p}/learn/global/model`` (:attr:`broker.topics.Topics.global_model`),
so the site model on ``{p}/learn/model`` and the global one never meet on one topic.

>>> spec = BridgeSpec("s0", "10.231.0.1", 18830)
>>> print("\\n".join(bridge_lines(Topics("fleet"), spec)))  # doctest: +ELLIPSIS
connection fleetlearn-s0
address 10.231.0.1:18830
remote_clientid fleetlearn-bridge-s0
bridge_protocol_version mqttv311
try_private true
cleansession false
local_cleansession false
start_type automatic
restart_timeout 1 5
keepalive_interval 5
notifications true
notifications_local_only true
notification_topic fleet/learn/bridge/s0
topic learn/update/+ out 1 fleet/ fleet/
topic learn/status/+ out 1 fleet/ fleet/
topic metrics/+ out 1 fleet/ fleet/
topic deadletter/+ out 1 fleet/ fleet/
topic learn/model in 1 fleet/ fleet/
>>> [line for line in bridge_lines(Topics("fleet"), BridgeSpec("s0", "core", 1,
...     hierarchical=True, forward_readings=True)) if line.startswith("topic")]
... # doctest: +NORMALIZE_WHITESPACE
['topic learn/update/site-s0 out 1 fleet/ fleet/', 'topic learn/status/+ out 1 fleet/ fleet/',
 'topic metrics/+ out 1 fleet/ fleet/', 'topic deadletter/+ out 1 fleet/ fleet/',
 'topic model in 1 fleet/learn/global/ fleet/learn/', 'topic s0/+/reading out 1 fleet/ fleet/']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broker.address import BrokerAddress
from broker.secure import SecureDir
from broker.topics import Topics, check_id, check_site

#: QoS of every bridged topic: at least once, so a queued update is not dropped on the link.
BRIDGE_QOS = 1


def site_aggregator_id(site: str) -> str:
    """The node id (and update topic level) of a site's aggregator.

    >>> site_aggregator_id("s0")
    'site-s0'
    """
    return f"site-{check_site(site)}"


def update_signer(learner: str) -> str:
    """The role whose key must sign ``learner``'s updates: a site aggregator's (``site-S``,
    its site updates) or a gateway's. A gateway key named ``site-S`` cannot pose as a site.

    >>> update_signer("site-s0"), update_signer("gw-0")
    ('site_aggregator', 'gateway')
    """
    return "site_aggregator" if learner.startswith("site-") else "gateway"


def bridge_user(site: str) -> str:
    """The user name a site's bridge logs in to the core with (role ``bridge``).

    >>> bridge_user("s0")
    'bridge-s0'
    """
    return f"bridge-{check_site(site)}"


@dataclass(frozen=True)
class BridgeSpec:
    """One site's bridge to the core broker at ``host:port``."""

    site: str
    host: str
    port: int
    #: Send the site's readings up as well (they stay at the site unless told).
    forward_readings: bool = False
    #: Only the site aggregator's update goes up; the core model comes down as the global one.
    hierarchical: bool = False
    #: Seconds between pings on an idle link: a dead link is noticed after about 1.5 times it.
    keepalive: int = 5
    #: Reconnect backoff (base, cap), seconds.
    restart: tuple[int, int] = (1, 5)
    #: TLS: the CA that signed the core's certificate (no TLS without it).
    tls_ca: Path | None = None
    username: str | None = None
    password: str | None = None
    #: Mutual TLS: the bridge's client certificate and key.
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        check_site(self.site)
        if not 0 < self.port < 65536:
            raise ValueError(f"bridge port {self.port} is not 1..65535")
        if self.keepalive < 5:
            raise ValueError("keepalive_interval below 5 s is refused by Mosquitto")
        if (self.username is None) != (self.password is None):
            raise ValueError("a bridge needs both a user name and a password, or neither")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("a client certificate needs its key (and the key its certificate)")
        if self.tls_cert is not None and self.tls_ca is None:
            raise ValueError("a client certificate needs TLS: give the CA too")


def bridged_topics(t: Topics, spec: BridgeSpec) -> list[tuple[str, str, str, str]]:
    """(pattern, direction, local prefix, remote prefix) of every topic that crosses."""
    p = t.prefix + "/"
    update = (f"learn/update/{site_aggregator_id(spec.site)}" if spec.hierarchical
              else "learn/update/+")
    rows = [(update, "out", p, p)]
    rows += [(pattern, "out", p, p) for pattern in ("learn/status/+", "metrics/+", "deadletter/+")]
    if spec.hierarchical:
        rows.append(("model", "in", t.global_model.removesuffix("model"), p + "learn/"))
    else:
        rows.append(("learn/model", "in", p, p))
    if spec.forward_readings:
        rows.append((f"{spec.site}/+/reading", "out", p, p))
    return rows


def bridge_lines(t: Topics, spec: BridgeSpec) -> list[str]:
    """The mosquitto.conf section of this bridge (after every listener line: Mosquitto reads
    the lines after ``connection`` as the bridge's own)."""
    name = f"fleetlearn-{spec.site}"
    lines = [f"connection {name}", f"address {spec.host}:{spec.port}",
             f"remote_clientid fleetlearn-bridge-{spec.site}",
             "bridge_protocol_version mqttv311",
             # marks the connection as a bridge: the core then keeps the retain flag of what
             # it forwards, so the model arrives retained at the site
             "try_private true",
             "cleansession false", "local_cleansession false", "start_type automatic",
             f"restart_timeout {spec.restart[0]} {spec.restart[1]}",
             f"keepalive_interval {spec.keepalive}",
             "notifications true", "notifications_local_only true",
             f"notification_topic {t.bridge_state(spec.site)}"]
    if spec.username is not None:
        lines += [f"remote_username {check_id(spec.username, 'bridge user')}",
                  f"remote_password {spec.password}"]
    if spec.tls_ca is not None:
        lines += [f"bridge_cafile {spec.tls_ca}", "bridge_tls_version tlsv1.2",
                  "bridge_insecure false"]
    if spec.tls_cert is not None:
        lines += [f"bridge_certfile {spec.tls_cert}", f"bridge_keyfile {spec.tls_key}"]
    lines += [f"topic {pattern} {direction} {BRIDGE_QOS} {local} {remote}"
              for pattern, direction, local, remote in bridged_topics(t, spec)]
    return lines


def site_bridge(site: str, core: str, *, forward_readings: bool = False,
                hierarchical: bool = False, secure: SecureDir | None = None) -> BridgeSpec:
    """The bridge ``fleetlearn broker --site S --bridge-to CORE`` runs: secured (``secure``,
    the deployment's files), it speaks TLS with the deployment's CA and logs in as
    :func:`bridge_user`; else plain MQTT (an ``mqtts://`` core then needs ``secure``).

    >>> site_bridge("s1", "core.example:18830")
    ... # doctest: +ELLIPSIS
    BridgeSpec(site='s1', host='core.example', port=18830, forward_readings=False, ...)
    >>> site_bridge("s1", "mqtts://core.example")
    Traceback (most recent call last):
    ...
    ValueError: a TLS bridge (mqtts://) needs the deployment's CA and credentials: add --secure
    """
    address = BrokerAddress.parse(core)
    if secure is None:
        if address.tls:
            raise ValueError("a TLS bridge (mqtts://) needs the deployment's CA and "
                             "credentials: add --secure")
        return BridgeSpec(site, address.host, address.port, forward_readings, hierarchical)
    user = bridge_user(site)
    return BridgeSpec(site, address.host, address.port, forward_readings, hierarchical,
                      tls_ca=secure.ca_cert, username=user, password=secure.password(user))
