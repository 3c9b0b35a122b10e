"""From payloads to training samples: decode, check, de-duplicate, clean, build features.

Pure (``now`` is passed in) and the gateway's single source of accounting: every reading a
payload holds comes out as admitted (a feature row and a target) or rejected with a reason.

Work is per block: :meth:`ReadingPipeline.take` decodes a payload into columns (ids and types
checked), :meth:`ReadingPipeline.flush` takes every reading taken since, in arrival order,
through one compiled kernel (:mod:`gateway.kernel`): sequence marks, then the clock window,
then cleaning, then features. The rules, reading by reading:

- **sequence**: per device, the highest number seen and which of the last ``reorder_window``
  numbers arrived. A newer number is accepted; a late one inside the window once; a number seen
  before is a ``duplicate``; one below the window a ``replay``. A number that never arrived by
  the time the mark moved ``reorder_window`` past it is a gap; if it turns up after all it is
  refused as ``late`` and no longer counted as a gap. The mark moves before the clock is
  checked: a reading with a wrong clock has still arrived.
- **clock**: older than ``max_age`` is ``stale``, more than ``max_skew`` ahead is ``future``.
- **cleaning**, per channel by its :class:`~gateway.cleaning.ChannelPolicy`: a missing value is
  imputed (or the reading refused as ``missing_channel``); a value beyond ``z`` robust
  deviations of the median of the device's last ``window`` values is an outlier (replaced,
  clipped, or the reading refused as ``outlier``); optional smoothing. The state learns only
  from readings that pass, and from observed values, not filled ones.
- **features** (:mod:`gateway.features`): a reading with lag features and no earlier reading
  of its device is refused as ``no_history`` (the lag state still moves on).

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

from broker.messages import Reading
from broker.reading_codec import decode_reading_items
from broker.wire import DecodeError
from gateway import kernel
from gateway.cleaning import IMPUTE, OUTLIERS, CleaningConfig, target_policy
from gateway.devices import DeviceTable
from gateway.features import CYCLIC, LAG, SITE, FeatureSpec
from gateway.intake import INT64_MAX, fast_columns
from gateway.validation import Rejected, check_reading


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


REASONS = kernel.CODES


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


class ReadingPipeline:
    def __init__(self, spec: FeatureSpec, config: CleaningConfig) -> None:
        self.spec = spec
        self.config = config
        self.channels = spec.channels  # the target last
        default = config.policy
        policies = {**{c: default for c in self.channels}, spec.target: target_policy(default),
                    **{c: p for c, p in config.channel_policies.items() if c in self.channels}}
        self.policies = [policies[c] for c in self.channels]
        self._policy = self._policy_arrays()
        self._feature_plan()
        self.devices_table = DeviceTable(len(self.channels), max(p.window for p in self.policies),
                                         config.reorder_window, len(REASONS))
        self.accounting = Accounting()
        self._new_block()
        # gap lists the kernel fills; it stops before it could overflow them
        room = 4 * (kernel.RECENT_GAPS + config.reorder_window)
        self._gap_row = np.empty(room, np.int64)
        self._gap_dev = np.empty(room, np.int64)
        self._gap_seq = np.empty(room, np.int64)

    def _policy_arrays(self) -> tuple[np.ndarray, ...]:
        """The channels' policies as the kernel takes them (:func:`kernel.process_rows`)."""
        p = self.policies
        return (np.array([IMPUTE.index(q.impute) for q in p], np.int64),
                np.array([q.max_age for q in p], float),
                np.array([OUTLIERS.index(q.outliers) for q in p], np.int64),
                np.array([q.z for q in p], float),
                np.array([q.window for q in p], np.int64),
                np.array([q.min_history for q in p], np.int64),
                np.array([np.nan if q.smooth is None else q.smooth for q in p], float))

    def _feature_plan(self) -> None:
        kinds, index, period = [], [], []
        self.sites: dict[str, int] = {}
        self.lag_features = [f for f in self.spec.features if f.startswith(LAG)]
        for f in self.spec.features:
            if f in CYCLIC:
                span, _ = CYCLIC[f]
                kinds.append(kernel.FEATURE_SIN if f.endswith("_sin") else kernel.FEATURE_COS)
                index.append(0)
                period.append(span)
                continue
            if f.startswith(SITE):
                kinds.append(kernel.FEATURE_SITE)
                index.append(self.sites.setdefault(f[len(SITE):], len(self.sites)))
            elif f.startswith(LAG):
                kinds.append(kernel.FEATURE_LAG)
                index.append(self.channels.index(f[len(LAG):]))
            else:
                kinds.append(kernel.FEATURE_CHANNEL)
                index.append(self.channels.index(f))
            period.append(1.0)
        self._plan = (np.array(kinds, np.int64), np.array(index, np.int64),
                      np.array(period, float))

    # ------------------------------------------------------------------ taking payloads

    def _new_block(self) -> None:
        # per message: (ref, payload, readings, device row or -1, now, site index or -1)
        self._messages: list[tuple[Any, bytes, int, int, float, int]] = []
        self._seq: list[int] = []
        self._ts: list[float] = []
        self._cols: list[list[Any]] = [[] for _ in self.channels]
        self._refused: dict[int, Rejected] = {}
        self.pending = 0  # readings taken, not yet flushed

    def take(self, topic_device: str, payload: bytes, now: float, site: str = "",
             ref: Any = None) -> int:
        """Decode a payload (one reading, or a batch) into the block; returns its readings.

        Nothing is judged beyond decoding and ids until :meth:`flush`."""
        table = self.devices_table
        row = table.rows.get(topic_device)
        columns = None
        if row is not None and len(payload) <= self.config.max_payload:
            columns = fast_columns(payload, topic_device, self.channels)
        if columns is None:
            return self._take_carefully(topic_device, payload, now, site, ref)
        seqs, tss, cols = columns
        n = len(seqs)
        self._messages.append((ref, payload, n, row, now, self.sites.get(site, -1)))
        self.pending += n
        self._seq += seqs
        self._ts += tss
        for mine, theirs in zip(self._cols, cols, strict=True):
            mine += theirs
        return n

    def _take_carefully(self, topic_device: str, payload: bytes, now: float, site: str,
                        ref: Any) -> int:
        """The slow path: each reading decoded and checked on its own, each fault explained."""
        try:
            items: list[Reading | DecodeError] = decode_reading_items(
                payload, self.config.max_payload)
        except DecodeError as exc:
            items = [exc]
        row = -1
        first = len(self._seq)
        for k, item in enumerate(items):
            try:
                if isinstance(item, DecodeError):
                    raise Rejected(item.reason, str(item))
                check_reading(topic_device, item, self.config.allowlist)
                if item.seq > INT64_MAX:
                    raise Rejected("schema", "reading field 'seq' must be below 2**63")
            except Rejected as refused:
                self._refused[first + k] = refused
                self._seq.append(0)
                self._ts.append(0.0)
                for column in self._cols:
                    column.append(None)
                continue
            if row < 0:
                row = self.devices_table.index(topic_device)
            self._seq.append(item.seq)
            self._ts.append(item.ts)
            values = item.values
            for name, column in zip(self.channels, self._cols, strict=True):
                column.append(values.get(name))
        self._messages.append((ref, payload, len(items), row, now, self.sites.get(site, -1)))
        self.pending += len(items)
        return len(items)

    # ------------------------------------------------------------------ judging a block

    def flush(self, outcomes: bool = False) -> Block:
        """Judge every reading taken since the last flush, in order; count each outcome.

        ``outcomes``: also list each reading's Admitted or Rejected, in order (for tests and
        tools; the gateway uses the arrays)."""
        n = len(self._seq)
        if not self._messages:
            return Block(np.empty((0, len(self.spec.features))), np.empty(0), [], [], [],
                         [] if outcomes else None)
        refused, seqs, tss, cols = self._refused, self._seq, self._ts, self._cols
        refs, payloads, rows, devs, nows, sites = zip(*self._messages, strict=True)
        self._new_block()
        counts = np.asarray(rows, np.int64)
        dev = np.repeat(np.asarray(devs, np.int64), counts)
        now = np.repeat(np.asarray(nows, float), counts)
        site = np.repeat(np.asarray(sites, np.int64), counts)
        code = np.full(n, kernel.PENDING, np.int8)
        if refused:
            code[list(refused)] = kernel.REFUSED
        arg = np.zeros(n, np.int64)
        V = np.empty((n, len(self.channels)))
        X = np.empty((n, len(self.spec.features)))
        Y = np.empty(n)
        seq, ts, vals = np.zeros(n, np.int64), np.zeros(n), np.zeros((n, len(self.channels)))
        failure = None
        try:
            seq[:], ts[:] = seqs, tss
            for c, column in enumerate(cols):
                vals[:, c] = np.asarray(column, float)  # None -> NaN: missing
            self._judge(code, arg, dev, seq, ts, now, site, vals, V, X, Y)
        except Exception as exc:  # a bug of ours: the block's readings are still accounted for
            code[code != kernel.REFUSED] = kernel.INTERNAL
            failure = Rejected("internal_error", f"{type(exc).__name__}: {exc}")
        tally = np.bincount(code[code != kernel.REFUSED], minlength=len(REASONS))
        self.accounting.admitted += int(tally[kernel.ADMITTED])
        for k in np.flatnonzero(tally[1:]) + 1:
            self.accounting.rejected[REASONS[k]] += int(tally[k])
        for refusal in refused.values():
            self.accounting.rejected[refusal.reason] += 1
        ends = np.cumsum(counts)
        rejected = []
        bad = np.flatnonzero(code != kernel.ADMITTED)
        for i in bad.tolist():
            why = refused.get(i) or failure or self._explain(int(code[i]), i, dev, seq, ts, now,
                                                             vals, arg)
            rejected.append((int(np.searchsorted(ends, i, side="right")), why))
        ok = code == kernel.ADMITTED
        block = Block(X[ok], Y[ok], rejected, list(refs), list(payloads))
        if outcomes:
            reasons = dict(zip(bad.tolist(), (why for _, why in rejected), strict=True))
            block.outcomes = [
                reasons.get(i) or Admitted(X[i], float(Y[i]),
                                           dict(zip(self.channels, V[i].tolist(), strict=True)))
                for i in range(n)]
        return block

    def _judge(self, code: np.ndarray, arg: np.ndarray, dev: np.ndarray, seq: np.ndarray,
               ts: np.ndarray, now: np.ndarray, site: np.ndarray, vals: np.ndarray,
               V: np.ndarray, X: np.ndarray, Y: np.ndarray) -> None:
        """The kernel over the whole block, with the gaps it lists taken between calls."""
        table, cfg = self.devices_table, self.config
        limits = (cfg.reorder_window, float(cfg.max_age), float(cfg.max_skew))
        start, n = 0, len(code)
        while start < n:
            end, listed = kernel.process_rows(
                start, code, arg, dev, seq, ts, now, site, vals, V, X, Y, limits, self._policy,
                self._plan, table.kernel_state(), self._gap_row, self._gap_dev, self._gap_seq)
            self._settle_sequence(code, dev, seq, start, end, listed)
            start = end

    def _settle_sequence(self, code: np.ndarray, dev: np.ndarray, seq: np.ndarray, start: int,
                         end: int, listed: int) -> None:
        """Remember the gaps the kernel listed and tell late readings from replays, in order."""
        table = self.devices_table
        gap_row, gap_dev, gap_seq = self._gap_row, self._gap_dev, self._gap_seq
        g = 0
        for i in (np.flatnonzero(code[start:end] == kernel.BELOW) + start).tolist():
            while g < listed and gap_row[g] < i:
                table.remember_gap(int(gap_dev[g]), int(gap_seq[g]))
                g += 1
            row = int(dev[i])
            code[i] = kernel.LATE if table.take_late(row, int(seq[i])) else kernel.REPLAY
            table.books[row, code[i]] += 1
        for k in range(g, listed):
            table.remember_gap(int(gap_dev[k]), int(gap_seq[k]))

    def _explain(self, code: int, i: int, dev: np.ndarray, seq: np.ndarray, ts: np.ndarray,
                 now: np.ndarray, vals: np.ndarray, arg: np.ndarray) -> Rejected:
        reason = REASONS[code]
        device = self.devices_table.names[dev[i]]
        cfg = self.config
        if code in (kernel.DUPLICATE, kernel.REPLAY, kernel.LATE):
            return Rejected(reason, f"{device} seq {seq[i]}")
        if code == kernel.STALE:
            return Rejected(reason, f"{now[i] - ts[i]:.0f}s old (max {cfg.max_age:g}s)")
        if code == kernel.FUTURE:
            return Rejected(reason, f"{ts[i] - now[i]:.0f}s ahead (max {cfg.max_skew:g}s)")
        if code == kernel.MISSING_CHANNEL:
            return Rejected(reason, self.channels[arg[i]])
        if code == kernel.OUTLIER:
            c = arg[i]
            return Rejected(reason, f"{self.channels[c]}={vals[i, c]:g}, beyond "
                                    f"{self.policies[c].z:g} robust deviations of the median")
        return Rejected(reason, f"{self.lag_features[0]} needs an earlier reading of {device}")

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
    def devices(self) -> int:
        return self.devices_table.devices

    @property
    def gaps(self) -> int:
        return self.devices_table.gaps

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
                "gaps": int(table.seq_gaps[row]),
                "imputed": int(table.q_imputed[row]), "clipped": int(table.q_clipped[row]),
            }
        return out


def warm() -> None:
    """Load (or compile) the kernel now, not on the first reading.

    >>> warm()
    """
    pipe = ReadingPipeline(FeatureSpec(("a",), "y"), CleaningConfig())
    pipe.admit("d", b'{"device":"d","seq":0,"ts":0.0,"values":{"a":1.0,"y":1.0}}', now=0.0)
