"""The reference pipeline: :mod:`gateway.pipeline` one payload at a time in pure Python, as the
gateway ran it before the compiled kernel (kept as the oracle the kernel is tested against).

"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from broker.messages import Reading
from broker.reading_codec import decode_reading_items
from broker.wire import DecodeError
from gateway.cleaning import target_policy
from gateway.features import FeatureBuilder, FeatureSpec
from gateway.pipeline import CleaningConfig
from gateway.validation import Rejected, check_reading
from tests.reference.cleaning import Cleaner, CleanReading
from tests.reference.sequence import SequenceTracker


def check_time(ts: float, now: float, max_age: float, max_skew: float) -> None:
    """Refuse timestamps older than ``max_age`` or further than ``max_skew`` in the future.

    >>> check_time(1000.0, now=1000.5, max_age=60, max_skew=5)
    >>> check_time(10.0, now=1000.0, max_age=60, max_skew=5)
    Traceback (most recent call last):
    ...
    gateway.validation.Rejected: stale: 990s old (max 60s)
    """
    if ts < now - max_age:
        raise Rejected("stale", f"{now - ts:.0f}s old (max {max_age:g}s)")
    if ts > now + max_skew:
        raise Rejected("future", f"{ts - now:.0f}s ahead (max {max_skew:g}s)")


@dataclass(frozen=True)
class Admitted:
    reading: Reading
    x: np.ndarray
    y: float
    clean: CleanReading


@dataclass
class Accounting:
    """How every reading ended: admitted (then learned) or rejected by reason; gaps apart."""

    admitted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    per_device: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, device: str | None, outcome: str) -> None:
        if outcome == "admitted":
            self.admitted += 1
        else:
            self.rejected[outcome] += 1
        if device is not None:
            books = self.per_device.get(device)
            if books is None:
                books = self.per_device[device] = Counter()
            books[outcome] += 1

    @property
    def total(self) -> int:
        return self.admitted + sum(self.rejected.values())


UNTRACKED = frozenset({"id_mismatch", "unknown_device"})


class ReadingPipeline:
    def __init__(self, spec: FeatureSpec, config: CleaningConfig) -> None:
        self.spec = spec
        self.config = config
        policies = {spec.target: target_policy(config.policy), **config.channel_policies}
        self.cleaner = Cleaner(spec.channels, policies, config.policy)
        self.features = FeatureBuilder(spec)
        self.sequences = SequenceTracker(config.reorder_window, config.max_seq_jump)
        self.accounting = Accounting()

    def admit(self, topic_device: str, payload: bytes, now: float, site: str = ""
              ) -> list[Admitted | Rejected]:
        """Every reading in ``payload`` (one, or a batch), each admitted or rejected."""
        try:
            items = decode_reading_items(payload, self.config.max_payload)
        except DecodeError as exc:
            items = [exc]
        outcomes: list[Admitted | Rejected] = []
        for item in items:
            if isinstance(item, DecodeError):
                outcome: Admitted | Rejected = Rejected(item.reason, str(item))
            else:
                try:
                    outcome = self._admit_one(topic_device, item, now, site)
                except Rejected as rejected:
                    outcome = rejected
            reason = "admitted" if isinstance(outcome, Admitted) else outcome.reason
            # per-device books only for devices that got past the id checks: a flood of made-up
            # ids must not grow them
            known = isinstance(item, Reading) and reason not in UNTRACKED
            self.accounting.count(item.device if known else None, reason)
            outcomes.append(outcome)
        return outcomes

    def _admit_one(self, topic_device: str, reading: Reading, now: float, site: str
                   ) -> Admitted:
        cfg = self.config
        check_reading(topic_device, reading, cfg.allowlist)
        # the sequence is marked before the clock is checked: a reading with a wrong clock has
        # still arrived, so its number is not a gap
        refused = self.sequences.admit(reading.device, reading.seq, reading.boot)
        if refused is not None:
            raise Rejected(refused, f"{reading.device} boot {reading.boot} seq {reading.seq}")
        check_time(reading.ts, now, cfg.max_age, cfg.max_skew)
        clean = self.cleaner.clean(reading.device, reading.values, reading.ts)
        x, y = self.features(clean.values, reading.ts, reading.device, site)
        return Admitted(reading, x, y, clean)

    def close(self) -> int:
        """The stream has ended: report the numbers still missing as gaps."""
        return self.sequences.close()

    def quality(self) -> dict[str, dict]:
        """Per device: outcomes, gaps, imputed and clipped values."""
        out = {}
        gaps = self.sequences.gaps_by_device
        restarts = self.sequences.restarts_by_device
        for device, outcomes in self.accounting.per_device.items():
            cleaned = self.cleaner.devices.get(device)
            out[device] = {
                **outcomes, "gaps": gaps.get(device, 0), "restarts": restarts.get(device, 0),
                "imputed": cleaned.imputed if cleaned else 0,
                "clipped": cleaned.clipped if cleaned else 0,
            }
        return out
