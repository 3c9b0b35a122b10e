"""Every MQTT topic string of a fleetlearn deployment, built and parsed in one place.

>>> t = Topics("fleet")
>>> t.reading("s1", "s1-d0042")
'fleet/s1/s1-d0042/reading'
>>> t.parse_device_topic("fleet/s1/s1-d0042/reading")
('s1', 's1-d0042', 'reading')
>>> t.model
'fleet/learn/model'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Top-level words under the prefix that belong to the system, never to a site.
RESERVED_LEVELS = frozenset({"learn", "metrics", "deadletter"})

#: Ids (site, device, node) stay one topic level: no '/', '+', '#', spaces or control chars.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

DEVICE_KINDS = ("reading", "status", "prediction")


class TopicError(ValueError):
    """A topic or an id that does not fit the fleetlearn topic layout."""


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` when it is a valid single-level id, else raise :class:`TopicError`.

    >>> check_id("s1-d0001")
    's1-d0001'
    >>> check_id("a/b")
    Traceback (most recent call last):
    ...
    broker.topics.TopicError: invalid id 'a/b': use 1-64 of A-Z a-z 0-9 _ . : - (no '/', '+', '#')
    """
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise TopicError(
            f"invalid {what} {value!r}: use 1-64 of A-Z a-z 0-9 _ . : - (no '/', '+', '#')"
        )
    return value


def check_site(site: str) -> str:
    """A site id is an id that is not one of the system's reserved levels."""
    check_id(site, "site")
    if site in RESERVED_LEVELS:
        raise TopicError(f"site {site!r} is reserved; choose another name")
    return site


@dataclass(frozen=True)
class Topics:
    """Topic builders for one deployment, named by its prefix."""

    prefix: str = "fleet"

    def __post_init__(self) -> None:
        levels = self.prefix.split("/")
        if not self.prefix or any(not lv or lv in {"+", "#"} or "+" in lv or "#" in lv
                                  for lv in levels):
            raise TopicError(f"invalid topic prefix {self.prefix!r}")

    # device side
    def reading(self, site: str, device: str) -> str:
        return f"{self.prefix}/{site}/{device}/reading"

    def device_status(self, site: str, device: str) -> str:
        return f"{self.prefix}/{site}/{device}/status"

    def prediction(self, site: str, device: str) -> str:
        return f"{self.prefix}/{site}/{device}/prediction"

    def readings_filter(self, site: str = "+") -> str:
        """Subscription filter for the readings of one site, or of all sites."""
        return f"{self.prefix}/{site}/+/reading"

    @property
    def predictions_filter(self) -> str:
        return f"{self.prefix}/+/+/prediction"

    # learning side
    def update(self, learner: str) -> str:
        return f"{self.prefix}/learn/update/{learner}"

    @property
    def updates_filter(self) -> str:
        return f"{self.prefix}/learn/update/+"

    @property
    def model(self) -> str:
        return f"{self.prefix}/learn/model"

    def personal(self, gateway: str, site: str, device: str | None = None) -> str:
        """A gateway's personal part of a site (or of one device), retained.

        >>> Topics("p").personal("gw-0", "s1"), Topics("p").personal("gw-0", "s1", "d2")
        ('p/learn/personal/gw-0/s1', 'p/learn/personal/gw-0/s1/d2')
        """
        tail = f"/{device}" if device is not None else ""
        return f"{self.prefix}/learn/personal/{gateway}/{site}{tail}"

    @property
    def personal_filters(self) -> tuple[str, str]:
        """Every personal part: the sites' and the devices' (no ``#``: the ACL names none).

        >>> Topics("p").personal_filters
        ('p/learn/personal/+/+', 'p/learn/personal/+/+/+')
        """
        return (f"{self.prefix}/learn/personal/+/+", f"{self.prefix}/learn/personal/+/+/+")

    def is_personal(self, topic: str) -> bool:
        """>>> Topics("p").is_personal("p/learn/personal/gw-0/s1"), Topics("p").is_personal("p/x")
        (True, False)
        """
        return topic.startswith(f"{self.prefix}/learn/personal/")

    @property
    def global_model(self) -> str:
        """The core's model as a hierarchical site's broker holds it (``broker/bridge.py``)."""
        return f"{self.prefix}/learn/global/model"

    def bridge_state(self, site: str) -> str:
        """A site broker's own word on its bridge to the core: retained ``1`` (up) or ``0``."""
        return f"{self.prefix}/learn/bridge/{site}"

    def node_status(self, node: str) -> str:
        return f"{self.prefix}/learn/status/{node}"

    @property
    def node_status_filter(self) -> str:
        return f"{self.prefix}/learn/status/+"

    def probe(self, node: str) -> str:
        """A node's own echo topic: a message it sends there comes back after every retained
        message of its earlier subscriptions (the broker keeps one connection's order)."""
        return f"{self.prefix}/learn/probe/{node}"

    def ping(self, node: str) -> str:
        """Asks whether a live process holds ``node``'s id (``broker/presence.py``)."""
        return f"{self.prefix}/learn/ping/{node}"

    def claim(self, node: str) -> str:
        """Who holds ``node``'s id: the newest claim, retained; the holder answers a ping here."""
        return f"{self.prefix}/learn/claim/{node}"

    # operations
    def metrics(self, node: str) -> str:
        return f"{self.prefix}/metrics/{node}"

    @property
    def metrics_filter(self) -> str:
        return f"{self.prefix}/metrics/+"

    def deadletter(self, node: str) -> str:
        return f"{self.prefix}/deadletter/{node}"

    @property
    def deadletter_filter(self) -> str:
        return f"{self.prefix}/deadletter/+"

    # parsing
    def parse_device_topic(self, topic: str) -> tuple[str, str, str]:
        """Split ``{p}/{site}/{device}/{kind}`` into ``(site, device, kind)``."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise TopicError(f"topic {topic!r} is not under prefix {self.prefix!r}")
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] not in DEVICE_KINDS or parts[0] in RESERVED_LEVELS:
            raise TopicError(f"topic {topic!r} is not a device topic")
        return parts[0], parts[1], parts[2]

    def last_level(self, topic: str) -> str:
        """The node or learner id at the end of a per-node topic.

        >>> Topics("p").last_level("p/learn/update/gw-1")
        'gw-1'
        """
        return topic.rsplit("/", 1)[-1]
