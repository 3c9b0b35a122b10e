"""Which devices a gateway owns: a list of sites, a list of devices, or hash bucket i of k.

>>> Partition(sites=("s0",)).owns("s0", "s0-d0001"), Partition(sites=("s0",)).owns("s1", "x")
(True, False)
>>> p = Partition(bucket=0, buckets=2)
>>> sorted({p.owns("s0", f"d{i}") for i in range(10)})
[False, True]
>>> Partition.parse("bucket:1/4")
Partition(sites=None, bucket=1, buckets=4, devices=None)
>>> Partition.parse("devices:EWR,JFK").owns("s0", "JFK")
True
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from broker.topics import Topics, check_id, check_site


@dataclass(frozen=True)
class Partition:
    sites: tuple[str, ...] | None = None
    bucket: int | None = None
    buckets: int | None = None
    devices: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.sites is not None:
            if not self.sites:
                raise ValueError("a site partition needs at least one site")
            for site in self.sites:
                check_site(site)
        if self.devices is not None:
            if not self.devices:
                raise ValueError("a device partition needs at least one device")
            for device in self.devices:
                check_id(device, "device")
        if (self.bucket is None) != (self.buckets is None):
            raise ValueError("a hash partition needs both bucket and buckets")
        if self.buckets is not None and not 0 <= self.bucket < self.buckets:  # type: ignore[operator]
            raise ValueError(f"bucket must be in 0..{self.buckets - 1}")

    @classmethod
    def parse(cls, text: str) -> Partition:
        """``all``, ``sites:s0,s1``, ``devices:d1,d2`` or ``bucket:I/K``."""
        kind, _, rest = text.partition(":")
        if kind == "all" and not rest:
            return cls()
        if kind == "sites":
            return cls(sites=tuple(s for s in rest.split(",") if s))
        if kind == "devices":
            return cls(devices=frozenset(d for d in rest.split(",") if d))
        if kind == "bucket":
            i, _, k = rest.partition("/")
            if i.isdigit() and k.isdigit():
                return cls(bucket=int(i), buckets=int(k))
        raise ValueError(
            f"partition {text!r} is not 'all', 'sites:A,B', 'devices:A,B' or 'bucket:I/K'")

    def owns(self, site: str, device: str) -> bool:
        if self.sites is not None and site not in self.sites:
            return False
        if self.devices is not None and device not in self.devices:
            return False
        if self.buckets is not None:
            return zlib.crc32(device.encode()) % self.buckets == self.bucket
        return True

    def subscriptions(self, topics: Topics) -> list[str]:
        if self.sites is not None:
            return [topics.readings_filter(site) for site in self.sites]
        return [topics.readings_filter()]

    def __str__(self) -> str:
        if self.sites is not None:
            return "sites:" + ",".join(self.sites)
        if self.buckets is not None:
            return f"bucket:{self.bucket}/{self.buckets}"
        if self.devices is not None:
            return "devices:" + ",".join(sorted(self.devices))
        return "all"


#: Reading topics whose (site, device, ours?) is remembered: one per device, up to this many.
TOPICS_KNOWN = 100_000


class ReadingTopics:
    """``(site, device, owned)`` of a reading topic under a partition, parsed once per topic
    (up to :data:`TOPICS_KNOWN` remembered); a topic that is no device topic raises
    :class:`~broker.topics.TopicError`.

    >>> owners = ReadingTopics(Topics("p"), Partition(sites=("s0",)))
    >>> owners.of("p/s0/d1/reading"), owners.of("p/s1/d2/reading")
    (('s0', 'd1', True), ('s1', 'd2', False))
    """

    def __init__(self, topics: Topics, partition: Partition) -> None:
        self.topics = topics
        self.partition = partition
        self.known: dict[str, tuple[str, str, bool]] = {}

    def of(self, topic: str) -> tuple[str, str, bool]:
        known = self.known.get(topic)
        if known is None:
            site, device, _ = self.topics.parse_device_topic(topic)
            known = (site, device, self.partition.owns(site, device))
            if len(self.known) < TOPICS_KNOWN:
                self.known[topic] = known
        return known
