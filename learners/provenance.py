"""Which models on the model topic this aggregator made: it never adopts one it did not.

Without signatures (the signing work recognises its own models by their signature) the
aggregator knows its own models by their bytes: the SHA-256 of every payload it broadcast
(the last ``keep``), and of the model its newest checkpoint holds (written there with it). A
retained model found at start is adopted only if it is the checkpoint's own model; any other
model message (a forged one, one of another task, one with version 2**64-1) is refused as
``model_not_ours`` and leaves the aggregator's state as it was.

>>> own = OwnModels(keep=2)
>>> own.remember(b"v1"); own.remember(b"v2")
>>> own.is_own(b"v2"), own.is_own(b"forged")
(True, False)
>>> own.remember(b"v3")
>>> own.is_own(b"v1")        # only the last ``keep`` are remembered
False
>>> own.is_own(b"v3") and digest(b"v3") == own.last
True
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field

#: Broadcasts remembered: enough that an older copy a broker restart brings back (its last
#: saved retained model) is still known as ours.
DEFAULT_KEEP = 256


def digest(payload: bytes) -> str:
    """The SHA-256 of a payload, in hex: how a model is known as ours without a signature."""
    return hashlib.sha256(payload).hexdigest()


@dataclass
class OwnModels:
    """The digests of the models this aggregator broadcast, newest last."""

    keep: int = DEFAULT_KEEP
    order: deque[str] = field(default_factory=deque)
    known: set[str] = field(default_factory=set)
    broadcast: int = 0  # models this process broadcast (remember), not restored digests

    @property
    def last(self) -> str | None:
        return self.order[-1] if self.order else None

    def remember(self, payload: bytes) -> None:
        self.broadcast += 1
        self.remember_digest(digest(payload))

    def remember_digest(self, value: str) -> None:
        if value in self.known:
            return
        self.order.append(value)
        self.known.add(value)
        while len(self.order) > self.keep:
            self.known.discard(self.order.popleft())

    def is_own(self, payload: bytes) -> bool:
        return digest(payload) in self.known
