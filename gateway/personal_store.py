"""A gateway's personal parts kept across its restarts, in its state directory.

The parts learn from the sites' readings alone (:mod:`gateway.personalising`); the broker
keeps only their blend, retained, for predictors. So a gateway writes them whole
(:func:`learners.personal_checkpoint.parts_state`, with the devices each key learned from)
after publishing parts, every :data:`SAVE_INTERVAL` seconds at most (the first one too; by a
thread of its own), and at its stop, as the aggregator writes its checkpoints
(:class:`~learners.checkpoint.CheckpointStore`: atomic, the newest :data:`KEEP` kept, a
damaged one skipped with a WARNING). On start it resumes from the newest that is this
gateway's, of its mode (site or device) and of this task; a write that fails is logged once
per kind and counted (``checkpoint_errors``), and the gateway learns on.

>>> import tempfile
>>> import numpy as np
>>> from pathlib import Path
>>> from broker.topics import Topics
>>> from gateway.partition import Partition, ReadingTopics
>>> from learners.linear import LinearModel
>>> def parts():
...     owners = ReadingTopics(Topics("p"), Partition())
...     return Personalising("site", lambda: LinearModel(("a",)), owners)
>>> where, mine = Path(tempfile.mkdtemp()), parts()
>>> keys = mine.keys(["p/s0/d1/reading"], np.array([3]), np.arange(3))
>>> _ = mine.learn(keys, np.ones((3, 1)), np.ones(3), np.zeros(3))
>>> PartsCheckpoint(where, mine, "gw-0", "y").save()
>>> again = parts()
>>> PartsCheckpoint(where, again, "gw-0", "y").resume().name.startswith("ckpt-")
True
>>> again.parts.samples(("s0", None)), again.devices
(3, {('s0', None): {'d1'}})
>>> PartsCheckpoint(where, parts(), "gw-1", "y").resume() is None  # another gateway's
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.personalising import Personalising
from learners.checkpoint import CheckpointError, CheckpointStore
from learners.personal_checkpoint import key_from_json, key_to_json, parts_state, restore_parts

log = logging.getLogger(__name__)

#: Seconds between two checkpoints of the parts while readings flow (and one at the stop).
SAVE_INTERVAL = 10.0
#: Checkpoints kept (the one before the newest: if the newest is damaged).
KEEP = 2


class PartsCheckpoint:
    """The checkpoints of one gateway's personal parts."""

    def __init__(self, directory: Path, personal: Personalising, node_id: str, target: str,
                 interval: float = SAVE_INTERVAL) -> None:
        self.store = CheckpointStore(directory, KEEP)
        self.personal = personal
        self.node_id, self.target = node_id, target
        self.interval = interval
        # the first one after an interval too: not in the first syncs, when a pause would move
        # the first models' arrival against the stream (docs/architecture.md, issue 15.8)
        self.saved_at = time.monotonic()
        self.errors: Counter[str] = Counter()  # failed writes, by kind (errno name)
        self._writer: threading.Thread | None = None

    def check(self) -> None:
        """The directory can be written, or :class:`~learners.checkpoint.CheckpointError`."""
        self.store.check()

    def resume(self) -> Path | None:
        """Take the newest usable checkpoint's parts; its path, or None (none usable)."""
        path = self.store.load(self._accept)
        if path is not None:
            log.info("%s: resumed %d personal parts from %s", self.node_id,
                     len(self.personal.parts.models), path,
                     extra={"node": self.node_id, "path": str(path)})
        return path

    def _accept(self, state: dict) -> None:
        if state["gateway"] != self.node_id:
            raise ValueError(f"gateway {state['gateway']!r}'s, this is {self.node_id!r}")
        if state["target"] != self.target:
            raise ValueError(f"target {state['target']!r}, this task's {self.target!r}")
        if state["mode"] != self.personal.mode:
            raise ValueError(f"parts per {state['mode']}, this gateway's per {self.personal.mode}")
        devices = {key_from_json(key): set(names) for key, names in state["devices"]}
        if not all(isinstance(d, str) for names in devices.values() for d in names):
            raise ValueError("device names")
        seq = int(state["seq"])
        restore_parts(self.personal.parts, state["parts"])
        self.personal.devices = devices
        self.personal.seq = max(self.personal.seq, seq)

    def save_if_due(self, now: float) -> None:
        """Every :attr:`interval` seconds (``now``: a monotonic clock), the parts as they are
        now, written by a thread of its own: the encoding and the fsyncs never hold up the
        readings (a write still under way when the next is due: that one waits its turn)."""
        if now - self.saved_at < self.interval or self.writing():
            return
        self.saved_at = now
        self._writer = threading.Thread(target=self._write, args=self._snapshot(),
                                        name=f"{self.node_id}-parts-checkpoint", daemon=True)
        self._writer.start()

    def writing(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    def wait(self) -> None:
        """Until the write under way, if any, is done."""
        if self._writer is not None:
            self._writer.join()

    def save(self) -> None:
        """Write the parts now, after any write under way (at the stop)."""
        self.wait()
        self._write(*self._snapshot())

    def _snapshot(self) -> tuple[int, dict]:
        personal = self.personal  # plain lists: a copy the learning thread no longer touches
        return personal.seq, {
            "gateway": self.node_id, "target": self.target, "mode": personal.mode,
            "seq": personal.seq,
            "devices": [[key_to_json(k), sorted(v)] for k, v in personal.devices.items()],
            "parts": parts_state(personal.parts)}

    def _write(self, seq: int, state: dict) -> None:
        """One checkpoint; a failure is logged once per kind and counted."""
        try:
            self.store.save(seq, state)
        except CheckpointError as exc:
            if not self.errors[exc.kind]:
                log.error("%s: %s (logged once for %s; counted in checkpoint_errors)",
                          self.node_id, exc, exc.kind,
                          extra={"node": self.node_id, "reason": exc.kind})
            self.errors[exc.kind] += 1


def parts_store(config: GatewayConfig, personal: Personalising | None) -> PartsCheckpoint | None:
    """The checkpoints of a gateway's parts, its directory checked and the newest usable
    resumed; None without parts or ``state_dir``."""
    if personal is None or config.state_dir is None:
        return None
    store = PartsCheckpoint(config.state_dir, personal, config.node_id, config.spec.target)
    store.check()
    store.resume()
    return store
