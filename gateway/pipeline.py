"""From payloads to training samples: decode, check, de-duplicate, clean, build features.

Pure (``now`` is passed in) and the gateway's single source of accounting: every reading a
payload holds comes out as admitted (a feature row and a target) or rejected with a reason.

Work is per block: :meth:`ReadingPipeline.take` decodes a payload into columns (ids and types
checked; :mod:`gateway.pending_block`), :meth:`ReadingPipeline.flush` takes every reading taken
since, in arrival order, through one compiled kernel (:mod:`gateway.judge_kernel`): sequence
marks, then the clock window, then cleaning, then features, and counts each outcome. The rules,
reading by reading:

- **sequence**: per device, the boot id, the highest number seen and which of the last
  ``reorder_window`` numbers arrived. A newer number is accepted; a late one inside the window
  once; a number seen before is a ``duplicate``; one below the window a ``replay``. A number
  that never arrived by the time the mark moved ``reorder_window`` past it is a gap; if it turns
  up after all it is refused as ``late`` and no longer counted as a gap. A reading of a larger
  boot id (the device restarted) is accepted whatever its number: the old boot's missing
  numbers are gaps, and the marks start again from it; one of a smaller boot id is
  ``old_boot``; a number more than ``max_seq_jump`` above the mark is ``seq_jump`` and moves
  nothing. The mark moves before the clock is checked: a reading with a wrong clock has
  still arrived.
- **clock**: older than ``max_age`` is ``stale``, more than ``max_skew`` ahead is ``future``.
- **cleaning**, per channel by its :class:`~gateway.cleaning.ChannelPolicy`: a missing value is
  imputed (or the reading refused as ``missing_channel``); a value beyond ``z`` robust
  deviations of the median of the device's last ``window`` values is an outlier (replaced,
  clipped, or the reading refused as ``outlier``); optional smoothing. The state learns only
  from readings that pass, and from observed values, not filled ones.
- **features** (:mod:`gateway.features`): a reading with lag features and no earlier reading
  of its device is refused as ``no_history`` (the lag state still moves on).
- **task**: in a binary task, a reading whose target is neither 0 nor 1 is refused as
  ``target_not_binary`` before cleaning.

>>> from gateway.features import FeatureSpec
>>> pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
>>> ok = b'{"device":"d1","seq":1,"ts":100.0,"values":{"a":1.0,"y":2.0}}'
>>> [type(o).__name__ for o in pipe.admit("d1", ok, now=100.0)]
['Admitted']
>>> [o.reason for o in pipe.admit("d1", ok, now=100.0)]
['duplicate']
>>> [o.reason for o in pipe.admit("d1", b"[1, 2", now=100.0)]
['malformed']
>>> pipe.accounting.rejected
Counter({'duplicate': 1, 'malformed': 1})
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.cleaning import CleaningConfig
from gateway.device_state import DeviceTable
from gateway.features import CYCLIC, FeatureSpec
from gateway.judge_kernel import JudgeRows, gap_room, judge_rows
from gateway.judge_policy import judge_plan
from gateway.local_time import offsets
from gateway.outcomes import (
    ADMITTED,
    BELOW,
    CODES,
    INTERNAL,
    LATE,
    PENDING,
    REFUSED,
    REPLAY,
)
from gateway.pending_block import PendingBlock, Taken
from gateway.refusals import explain
from gateway.sequence_marks import GapList
from gateway.validation import Rejected

__all__ = ["Accounting", "Admitted", "Block", "CleaningConfig", "ReadingPipeline", "warm"]


@dataclass(frozen=True)
class Admitted:
    x: np.ndarray  # the features
    y: float  # the target
    values: dict[str, float]  # every channel, cleaned


@dataclass
class Accounting:
    """How every reading ended: admitted (then learned) or rejected by reason; gaps apart."""

    admitted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.admitted + sum(self.rejected.values())


REASONS = CODES

@dataclass
class Block:
    """What :meth:`ReadingPipeline.flush` returns: the admitted samples in arrival order, and
    every refused reading with the index of the message it came in (``refs[index]`` is what
    :meth:`ReadingPipeline.take` was given as ``ref``, ``payloads[index]`` its payload)."""

    X: np.ndarray
    y: np.ndarray
    rejected: list[tuple[int, Rejected]]
    refs: list[Any]
    payloads: list[bytes]
    outcomes: list[Admitted | Rejected] | None = None
    rows: JudgeRows | None = None  # every reading judged (codes, seq, ts): for the predictor
    ends: np.ndarray | None = None  # per message: the end of its readings in ``rows``


class ReadingPipeline:
    def __init__(self, spec: FeatureSpec, config: CleaningConfig) -> None:
        self.spec = spec
        self.config = config
        plan = judge_plan(spec, config)
        self.channels = plan.channels  # the target last
        self.policies = plan.policies
        self.sites = plan.sites
        self.device_codes = plan.devices  # device -> its one-hot index
        self._timed = any(f in CYCLIC for f in spec.features) and not spec.local_time.is_utc
        self.lag_features = plan.lag_features
        self._policy = plan.policy
        self.devices_table = DeviceTable(len(self.channels), max(p.window for p in self.policies),
                                         config.reorder_window, len(REASONS))
        self.accounting = Accounting()
        self._block = PendingBlock(self.channels, config, self.devices_table, self.sites)
        #: Decode a payload (one reading, or a batch) into the block; returns its readings.
        #: Nothing is judged beyond decoding and ids until :meth:`flush`. (The block's own
        #: method, bound here: it runs once per message, so no forwarding call in between.)
        self.take = self._block.take
        self.presence = self._block.presence  # per channel, the readings that carried it
        # gap lists the kernel fills; it stops before it could overflow them
        self._gaps = GapList.empty(gap_room(config.reorder_window))

    pending = property(lambda self: self._block.pending, doc="Readings not yet flushed.")

    # ------------------------------------------------------------------ judging a block

    def flush(self, outcomes: bool = False) -> Block:
        """Judge every reading taken since the last flush, in order; count each outcome.

        ``outcomes``: also list each reading's Admitted or Rejected, in order (for tests and
        tools; the gateway uses the arrays)."""
        if self._block.empty:
            return Block(np.empty((0, len(self.spec.features))), np.empty(0), [], [], [],
                         [] if outcomes else None)
        taken = self._block.hand_over()
        refused = taken.refused
        n, channels = len(taken.seq), len(self.channels)
        code = np.full(n, PENDING, np.int8)
        if refused:
            code[list(refused)] = REFUSED
        rows = JudgeRows(code=code, arg=np.zeros(n, np.int64), dev=taken.dev,
                         seq=np.zeros(n, np.int64), boot=np.zeros(n, np.int64), ts=np.zeros(n),
                         now=taken.now, site=taken.site, unit=np.full(n, -1, np.int64),
                         local=np.zeros(n), vals=np.zeros((n, channels)),
                         clean=np.empty((n, channels)), X=np.empty((n, len(self.spec.features))),
                         Y=np.empty(n))
        failure = None
        try:
            rows.seq[:], rows.boot[:], rows.ts[:] = taken.seq, taken.boot, taken.ts
            for c, column in enumerate(taken.cols):
                rows.vals[:, c] = np.asarray(column, float)  # None -> NaN: missing
            self._place(rows, taken)
            self._judge(rows)
        except Exception as exc:  # a bug of ours: the block's readings are still accounted for
            code[code != REFUSED] = INTERNAL
            failure = Rejected("internal_error", f"{type(exc).__name__}: {exc}")
        return self._account(rows, taken, failure, outcomes)

    def _account(self, rows: JudgeRows, taken: Taken, failure: Rejected | None,
                 outcomes: bool) -> Block:
        """Count the block's outcomes; the admitted samples and the refusals, explained."""
        code, refused = rows.code, taken.refused
        tally = np.bincount(code[code != REFUSED], minlength=len(REASONS))
        self.accounting.admitted += int(tally[ADMITTED])
        for k in np.flatnonzero(tally[1:]) + 1:
            self.accounting.rejected[REASONS[k]] += int(tally[k])
        for refusal in refused.values():
            self.accounting.rejected[refusal.reason] += 1
        ends = np.cumsum(taken.counts)
        rejected = []
        bad = np.flatnonzero(code != ADMITTED)
        for i in bad.tolist():
            why = refused.get(i) or failure or explain(rows, i, self)
            rejected.append((int(np.searchsorted(ends, i, side="right")), why))
        ok = code == ADMITTED
        block = Block(rows.X[ok], rows.Y[ok], rejected, taken.refs, taken.payloads,
                      rows=rows, ends=ends)
        if outcomes:
            reasons = dict(zip(bad.tolist(), (why for _, why in rejected), strict=True))
            block.outcomes = [
                reasons.get(i) or Admitted(
                    rows.X[i], float(rows.Y[i]),
                    dict(zip(self.channels, rows.clean[i].tolist(), strict=True)))
                for i in range(len(code))]
        return block

    def _place(self, rows: JudgeRows, taken: Taken) -> None:
        """Each reading's device one-hot index and offset to local time (per message)."""
        if not self.device_codes and not self._timed:
            return
        names = self.devices_table.names
        devices = [names[r] if r >= 0 else "" for r in taken.message_rows]
        if self.device_codes:
            rows.unit[:] = np.repeat([self.device_codes.get(d, -1) for d in devices],
                                     taken.counts)
        if self._timed:  # zones per message; offsets per zone, for all its readings at once
            zone_of = self.spec.local_time.zone_of
            zones = np.repeat(np.array([zone_of(s, d) for s, d in zip(
                taken.site_names, devices, strict=True)], dtype=object), taken.counts)
            for zone in set(zones.tolist()):
                mine = zones == zone
                rows.local[mine] = offsets(rows.ts[mine], zone)

    def _judge(self, rows: JudgeRows) -> None:
        """The kernel over the whole block, with the gaps it lists taken between calls."""
        state = self.devices_table.kernel_state()
        start, n = 0, len(rows.code)
        while start < n:
            end, listed = judge_rows(start, rows, self._policy, state, self._gaps)
            self._settle_sequence(rows, start, end, listed)
            start = end

    def _settle_sequence(self, rows: JudgeRows, start: int, end: int, listed: int) -> None:
        """Remember the gaps the kernel listed (a restart forgets the old boot's) and tell late
        readings from replays, in order."""
        table, gaps, code = self.devices_table, self._gaps, rows.code
        g = 0
        for i in (np.flatnonzero(code[start:end] == BELOW) + start).tolist():
            while g < listed and gaps.row[g] < i:
                table.remember_gap(int(gaps.device[g]), int(gaps.seq[g]))
                g += 1
            row = int(rows.dev[i])
            code[i] = LATE if table.take_late(row, int(rows.seq[i])) else REPLAY
            table.books[row, code[i]] += 1
        for k in range(g, listed):
            table.remember_gap(int(gaps.device[k]), int(gaps.seq[k]))

    # ------------------------------------------------------------------ one payload at a time

    def admit(self, topic_device: str, payload: bytes, now: float, site: str = ""
              ) -> list[Admitted | Rejected]:
        """Every reading in ``payload`` (one, or a batch), each admitted or rejected: a block
        of one message (readings taken before and not flushed are judged too)."""
        self.take(topic_device, payload, now, site)
        return self.flush(outcomes=True).outcomes or []

    # ------------------------------------------------------------------ the books

    def close(self) -> int:
        """The stream has ended: report the numbers still missing as gaps."""
        return self.devices_table.close()

    @property
    def devices(self) -> int:  # devices whose readings reached the sequence marks
        return self.devices_table.devices

    @property
    def gaps(self) -> int:
        return self.devices_table.gaps

    @property
    def restarts(self) -> int:  # devices' new boots seen (each closed the old boot's window)
        return self.devices_table.restarts

    def quality(self) -> dict[str, dict]:
        """Per device: outcomes, gaps, imputed and clipped values."""
        table = self.devices_table
        out = {}
        for row, device in enumerate(table.names):
            books = table.books[row]
            if not books.any():
                continue
            out[device] = {
                **{REASONS[k]: int(books[k]) for k in np.flatnonzero(books)},
                "gaps": int(table.seq_gaps[row]), "restarts": int(table.seq_restarts[row]),
                "imputed": int(table.q_imputed[row]), "clipped": int(table.q_clipped[row]),
            }
        return out


def warm() -> None:
    """Load (or compile) the kernel now, not on the first reading.

    >>> warm()
    """
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
    pipe.admit("d", b'{"device":"d","seq":0,"ts":0.0,"values":{"a":1.0,"y":1.0}}', now=0.0)
