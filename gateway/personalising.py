"""A gateway's personal parts (:mod:`learners.personal`): which part each admitted reading of
a block belongs to, and the retained messages that publish the parts that learned.

The keys come from the readings' topics (``{p}/{site}/{device}/reading``), one look-up per
message. A site's part serves the devices it learned from; its message lists them, so a
predictor whose partition differs from this gateway's still knows which part is whose.

>>> from broker.topics import Topics
>>> from gateway.partition import Partition, ReadingTopics
>>> from learners.linear import LinearModel
>>> owners = ReadingTopics(Topics("p"), Partition())
>>> mine = Personalising("site", lambda: LinearModel(("a",)), owners)
>>> refs = ["p/s0/d1/reading", "p/s1/d2/reading"]
>>> mine.keys(refs, np.array([1, 3]), np.array([0, 1, 2]))
[('s0', None), ('s1', None), ('s1', None)]
>>> _ = mine.learn(mine.keys(refs, np.array([1, 3]), np.arange(3)), np.ones((3, 1)),
...                np.ones(3), np.zeros(3))
>>> [p.site for p in mine.changed("gw-0", "y", now=1.0)], mine.changed("gw-0", "y", 1.0)
(['s0', 's1'], [])
"""

from __future__ import annotations

import numpy as np

from broker.keyring import Keyring
from broker.personal_codec import PersonalPart, encode_personal
from broker.topics import Topics
from gateway.partition import ReadingTopics
from learners.personal import Key, MakeModel, PersonalParts, key_of
from learners.steps import StepSearch


class Personalising:
    """One gateway's personal parts, keyed by ``mode`` ('site' or 'device')."""

    def __init__(self, mode: str, make: MakeModel, owners: ReadingTopics, seq: int = 0,
                 steps: StepSearch | None = None) -> None:
        self.mode = mode
        self.parts = PersonalParts(make, steps)  # steps: lr = "auto", the own models'
        self.owners = owners
        self.devices: dict[Key, set[str]] = {}  # per key: the devices it learned from
        self.seq = seq  # of the last message: give a restarted gateway a larger start

    def keys(self, refs: list, ends: np.ndarray, admitted: np.ndarray) -> list[Key]:
        """The key of each admitted reading (``admitted``: their indices in the block;
        ``ends``: per message, the end of its readings; ``refs``: the messages' topics)."""
        message = np.searchsorted(ends, admitted, side="right").tolist()
        of_message: dict[int, Key] = {}
        out: list[Key] = []
        for m in message:
            key = of_message.get(m)
            if key is None:
                site, device, _ = self.owners.of(refs[m])
                key = of_message[m] = key_of(self.mode, site, device)
                self.devices.setdefault(key, set()).add(device)
            out.append(key)
        return out

    def learn(self, keys: list[Key], X: np.ndarray, y: np.ndarray, base: np.ndarray
              ) -> np.ndarray:
        """The personalised predictions (``base``: the global model's); the parts learn."""
        return self.parts.learn(keys, X, y, base)

    def changed(self, gateway: str, target: str, now: float) -> list[PersonalPart]:
        """The parts that learned since the last call, as messages to publish."""
        out = []
        for key in sorted(self.parts.take_changed(), key=str):
            params, alpha = self.parts.part(key)
            if params is None:
                continue
            site, device = key
            self.seq += 1
            out.append(PersonalPart(gateway, site, device, tuple(sorted(self.devices.get(key, ()))),
                                    self.seq, now, self.parts.samples(key), target, alpha,
                                    params))
        return out

    def messages(self, topics: Topics, keys: Keyring, gateway: str, target: str, now: float
                 ) -> list[tuple[str, bytes]]:
        """The changed parts as (topic, signed payload): to publish retained, at QoS 1."""
        return [(topics.personal(p.gateway, p.site, p.device),
                 keys.sign(encode_personal(p), "personal"))
                for p in self.changed(gateway, target, now)]
