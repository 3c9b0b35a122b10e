"""Per-device state of a gateway, as arrays: one row per device, grown by doubling.

A device gets its row (an index) when its first reading passes the id checks; the compiled
judge (:mod:`gateway.judge_kernel`) reads and writes the rows in place, through
:meth:`DeviceTable.kernel_state`. Per device and channel it
keeps the last ``window`` raw values (for the outlier filter), the last clean value and its
time, the running mean and the count; per device the sequence marks (the boot id they follow,
first and highest number, a ring of which of the last ``reorder_window`` numbers arrived), gap,
restart and cleaning counts, the
previous clean values (for lag features) and the outcome books.

>>> table = DeviceTable(channels=2, max_window=4, reorder_window=8, outcomes=3, capacity=1)
>>> table.index("a"), table.index("b"), table.index("a")
(0, 1, 0)
>>> table.names, table.capacity, table.hist.shape
(['a', 'b'], 2, (2, 2, 4))
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from gateway.judge_kernel import JudgeState
from gateway.sequence_marks import RECENT_GAPS, RESTART

# (name, dtype, fill, per channel, extra trailing dimension); the names are JudgeState's
_FIELDS = (
    ("seq_boot", np.int64, 0, False, None),
    ("seq_first", np.int64, 0, False, None),
    ("seq_high", np.int64, 0, False, None),
    ("seq_started", np.uint8, 0, False, None),
    ("seq_ring", np.uint8, 0, False, "ring"),
    ("seq_gaps", np.int64, 0, False, None),
    ("seq_restarts", np.int64, 0, False, None),
    ("seq_jump", np.int64, -1, False, None),
    ("hist", np.float64, 0.0, True, "max_window"),
    ("ordered", np.float64, 0.0, True, "max_window"),  # the same values, sorted
    ("hist_len", np.int64, 0, True, None),
    ("hist_next", np.int64, 0, True, None),
    ("c_last", np.float64, math.nan, True, None),
    ("c_last_ts", np.float64, -math.inf, True, None),
    ("c_count", np.int64, 0, True, None),
    ("c_mean", np.float64, 0.0, True, None),
    ("c_smooth", np.float64, math.nan, True, None),
    ("c_median", np.float64, math.nan, True, None),
    ("c_spread", np.float64, 0.0, True, None),
    ("q_imputed", np.int64, 0, False, None),
    ("q_clipped", np.int64, 0, False, None),
    ("lag_prev", np.float64, math.nan, True, None),
    ("lag_has", np.uint8, 0, False, None),
    ("books", np.int64, 0, False, "outcomes"),
)


class DeviceTable:
    """Device ids to rows, and the state arrays the kernel works on."""

    def __init__(self, channels: int, max_window: int, reorder_window: int, outcomes: int,
                 capacity: int = 64) -> None:
        self.sizes = {"channels": channels, "max_window": max_window,
                      "reorder_window": reorder_window, "outcomes": outcomes,
                      # a power of two >= the window: the kernel indexes it with a mask
                      "ring": 1 << (reorder_window - 1).bit_length()}
        self.names: list[str] = []
        self.rows: dict[str, int] = {}
        self.recent_gaps: dict[int, deque[int]] = {}  # made at a device's first gap
        self.capacity = 0
        self._grow(max(1, capacity))

    def _shape(self, per_channel: bool, extra: str | None) -> tuple[int, ...]:
        shape = (self.capacity,)
        if per_channel:
            shape += (self.sizes["channels"],)
        if extra:
            shape += (self.sizes[extra],)
        return shape

    def _grow(self, capacity: int) -> None:
        old, self.capacity = self.capacity, capacity
        for name, dtype, fill, per_channel, extra in _FIELDS:
            array = np.full(self._shape(per_channel, extra), fill, dtype)
            if old:
                array[:old] = getattr(self, name)
            setattr(self, name, array)
        self._state = JudgeState(**{name: getattr(self, name) for name in JudgeState._fields})

    def kernel_state(self) -> JudgeState:
        """The arrays :func:`gateway.judge_kernel.judge_rows` works on (the same objects as
        this table's attributes, until it grows)."""
        return self._state

    def index(self, device: str) -> int:
        """The device's row; a new device gets the next one."""
        row = self.rows.get(device)
        if row is None:
            row = self.rows[device] = len(self.names)
            self.names.append(device)
            if row >= self.capacity:
                self._grow(2 * self.capacity)
        return row

    def remember_gap(self, row: int, seq: int) -> None:
        """Remember a gap of this device; :data:`RESTART` for a new boot forgets its old boot's
        gaps (a number of the new boot is not one of those; they stay counted)."""
        if seq == RESTART:
            self.recent_gaps.pop(row, None)
            return
        gaps = self.recent_gaps.get(row)
        if gaps is None:
            gaps = self.recent_gaps[row] = deque(maxlen=RECENT_GAPS)
        gaps.append(seq)

    def take_late(self, row: int, seq: int) -> bool:
        """True when ``seq`` was counted as a gap of this device (it is no longer one)."""
        gaps = self.recent_gaps.get(row)
        if not gaps or seq not in gaps:
            return False
        gaps.remove(seq)
        self.seq_gaps[row] -= 1
        return True

    def close(self) -> int:
        """The stream has ended: every number missing below a device's mark is a gap."""
        window, mask = self.sizes["reorder_window"], self.sizes["ring"] - 1
        found = 0
        for row in np.flatnonzero(self.seq_started[:len(self.names)]):
            high, ring = int(self.seq_high[row]), self.seq_ring[row]
            low = max(high - window + 1, int(self.seq_first[row]))
            for s in range(low, high):
                if not ring[s & mask]:
                    ring[s & mask] = 1
                    self.remember_gap(row, s)
                    self.seq_gaps[row] += 1
                    found += 1
        return found

    @property
    def devices(self) -> int:
        """Devices whose readings reached the sequence marks."""
        return int(self.seq_started[:len(self.names)].sum())

    @property
    def gaps(self) -> int:
        return int(self.seq_gaps[:len(self.names)].sum())

    @property
    def restarts(self) -> int:
        """New boots seen, over all devices."""
        return int(self.seq_restarts[:len(self.names)].sum())
