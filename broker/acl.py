"""Who may read and write which topic: the roles of a secured deployment, the Mosquitto ACL file
built from :class:`~broker.topics.Topics`, and a checker that reads that file the way
Mosquitto 2.0's default ACL plugin does (pure; no broker).

Roles (a user name is the node's id, so ``%u`` in a pattern is the node itself):

- ``device``: writes its own readings and status (``pattern write {p}/+/%u/reading``), reads
  nothing. Devices need no line of their own: adding one is adding its password.
- ``fleet``: a simulated fleet or a replay speaks for many devices over one connection, so it
  writes every device's readings and status (real devices get credentials of their own).
- ``gateway``: reads every reading (partitions are by hash) and the model; writes only its own
  update, status, metrics, dead letters and presence topics (ping, claim, probe).
- ``aggregator``: the only writer of the model; reads updates and every node's status.
- ``predictor``: reads readings and the model, writes predictions.
- ``monitor``: only reads (model, metrics, statuses, dead letters).
- ``site_aggregator``: a site's aggregator (user ``site-SITE``): the aggregator's rights on its
  site broker, and it reads the global model and writes its own site update.
- ``bridge``: a site broker's bridge to the core (user ``bridge-SITE``, ``broker/bridge.py``):
  writes what a site sends up (updates, node statuses, metrics, dead letters and its own
  site's readings) and reads the model it brings down.

Mosquitto applies ``pattern`` lines to every user, so only the device's own topics are
patterns; a node's own topics are ``topic`` lines under its ``user``: a pattern
``{p}/learn/update/%u`` would let every device send updates under its own name. No rule
grants ``#``; nothing is granted to anonymous clients (the config refuses them anyway).

>>> t = Topics("fleet")
>>> acl = parse_acl(render_acl(t, {"gw-0": "gateway", "s0-d0001": "device"}))
>>> permits(acl, "s0-d0001", "write", t.reading("s0", "s0-d0001"))
True
>>> permits(acl, "s0-d0001", "write", t.reading("s0", "s0-d0002")), \\
...     permits(acl, "s0-d0001", "write", t.model)
(False, False)
>>> permits(acl, "gw-0", "read", t.readings_filter()), permits(acl, "gw-0", "write", t.model)
(True, False)
>>> permits(acl, "gw-0", "read", "#"), permits(acl, None, "read", t.model)
(False, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from broker.topics import Topics, check_id, check_site

ROLES = ("device", "fleet", "gateway", "aggregator", "predictor", "monitor", "bridge",
         "site_aggregator")
#: The node users of a deployment besides its gateways (``gw-N``), with their roles.
NODE_USERS = {"aggregator": "aggregator", "predictor": "predictor", "fleet": "fleet",
              "replay": "fleet", "monitor": "monitor"}
ACCESS = {"read": 1, "write": 2, "readwrite": 3}


def gateway_ids(count: int) -> list[str]:
    """The ids ``fleetlearn up`` gives its gateways."""
    return [f"gw-{i}" for i in range(count)]


def roster(gateways: int, devices: Iterable[str] = (), sites: Iterable[str] = ()
           ) -> dict[str, str]:
    """User name -> role for a deployment of ``gateways`` gateways and these devices; with
    ``sites``, a bridge user, a site aggregator, a predictor and a fleet per site (``bridge-S``,
    ``site-S``, ``predictor-S``, ``fleet-S``: node ids stay unique across the sites).

    >>> roster(2, ["s0-d0000"])["gw-1"], roster(0, ["s0-d0000"])["s0-d0000"]
    ('gateway', 'device')
    >>> roster(1, ["gw-0"])
    Traceback (most recent call last):
    ...
    ValueError: device id 'gw-0' is a node's user name
    """
    users = {**NODE_USERS, **{g: "gateway" for g in gateway_ids(gateways)},
             **{f"bridge-{check_site(s)}": "bridge" for s in sites},
             **{f"site-{s}": "site_aggregator" for s in sites},
             **{f"predictor-{s}": "predictor" for s in sites},
             **{f"fleet-{s}": "fleet" for s in sites}}
    for device in devices:
        check_id(device, "device id")
        if device in users:
            raise ValueError(f"device id {device!r} is a node's user name")
        users[device] = "device"
    return users


def device_patterns(t: Topics) -> list[tuple[str, str]]:
    """(access, topic) of the patterns: a device's own reading and status, on any site."""
    return [("write", t.reading("+", "%u")), ("write", t.device_status("+", "%u"))]


def node_rules(t: Topics, user: str) -> list[tuple[str, str]]:
    """What every service node may do on its own topics: its status (and last will; read by
    its presence check), metrics, dead letters, ping, claim and probe."""
    return [("readwrite", t.node_status(user)), ("write", t.metrics(user)),
            ("write", t.deadletter(user)), ("readwrite", t.ping(user)),
            ("readwrite", t.claim(user)), ("readwrite", t.probe(user))]


def user_rules(t: Topics, user: str, role: str) -> list[tuple[str, str]]:
    """(access, topic filter) of the ``topic`` lines under ``user`` for its role."""
    readings, model = t.readings_filter(), t.model
    if role == "device":
        return []  # the patterns say it all
    if role == "monitor":
        return [("read", model), *(("read", f) for f in t.personal_filters),
                ("read", t.metrics_filter),
                ("read", t.node_status_filter),
                ("read", t.deadletter_filter)]
    if role == "bridge":  # no node of its own: it speaks for the nodes of its site
        return [("write", t.updates_filter), ("write", t.node_status_filter),
                ("write", t.metrics_filter), ("write", t.deadletter_filter), ("read", model),
                ("write", t.readings_filter(check_site(user.removeprefix("bridge-"))))]
    own = {
        "fleet": [("write", readings), ("write", t.device_status("+", "+"))],
        "gateway": [("read", readings), ("read", model), ("write", t.update(user)),
                    ("write", t.personal(user, "+")), ("write", t.personal(user, "+", "+"))],
        "aggregator": [("readwrite", model), ("read", t.updates_filter),
                       ("read", t.node_status_filter)],
        "site_aggregator": [("readwrite", model), ("read", t.updates_filter),
                            ("read", t.node_status_filter), ("read", t.global_model),
                            ("write", t.update(user))],
        "predictor": [("read", readings), ("read", model), ("write", t.predictions_filter),
                      *(("read", f) for f in t.personal_filters)],
    }
    if role not in own:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return own[role] + node_rules(t, user)


def render_acl(t: Topics, users: Mapping[str, str]) -> str:
    """The Mosquitto ACL file for these users (name -> role)."""
    lines = [f"# fleetlearn ACL (generated from broker/topics.py) for prefix {t.prefix!r}.",
             "# Patterns apply to every user: only a device's own topics are patterns.",
             *(f"pattern {access} {topic}" for access, topic in device_patterns(t))]
    for user in sorted(users):
        rules = user_rules(t, user, users[user])
        if rules:
            lines += ["", f"# {users[user]}", f"user {user}",
                      *(f"topic {access} {topic}" for access, topic in rules)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- checking


@dataclass
class Acl:
    """An ACL file read back: patterns for all users, topic rules per user."""

    patterns: list[tuple[int, str]] = field(default_factory=list)
    users: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def parse_acl(text: str) -> Acl:
    """Read an ACL file as Mosquitto does (``topic`` lines before any ``user`` line would be
    the anonymous client's: kept under the user ``None``)."""
    acl, user = Acl(), None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "user":
            user = rest.strip()
            continue
        parts = rest.split(" ", 1)
        access, topic = (parts[0], parts[1]) if parts[0] in ACCESS | {"deny": 0} else (
            "readwrite", rest)
        rule = (ACCESS.get(access, 0), topic.strip())
        if word == "pattern":
            acl.patterns.append(rule)
        elif word == "topic":
            acl.users.setdefault(user, []).append(rule)
        else:
            raise ValueError(f"unknown ACL line {raw!r}")
    return acl


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching; a ``+`` or ``#`` in ``topic`` is an ordinary level, so a filter
    that matches a subscription filter this way covers every topic it can receive.

    >>> matches("a/+/c", "a/b/c"), matches("a/#", "a"), matches("a/+", "a/b/c")
    (True, True, False)
    >>> matches("a/+/c", "#"), matches("a/+/c", "a/+/c")
    (False, True)
    """
    fl, tl = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(fl):
        if level == "#":
            return True
        if i >= len(tl) or (level != "+" and level != tl[i]):
            return False
    return len(fl) == len(tl)


def permits(acl: Acl, user: str | None, access: str, topic: str) -> bool:
    """True when ``user`` may ``access`` ("read" or "write") ``topic``; for "read",
    ``topic`` may be a subscription filter: True when every topic it matches may be read."""
    want = ACCESS[access]
    rules = list(acl.users.get(user, []))
    if user is not None and not any(c in user for c in "+#"):
        rules += [(a, t.replace("%u", user)) for a, t in acl.patterns if "%c" not in t]
    return any(a & want and matches(t, topic) for a, t in rules) and not any(
        a == 0 and matches(t, topic) for a, t in rules)
