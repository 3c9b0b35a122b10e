"""The sequence tracker's O(1) step gives exactly what the original O(window) one gave.

``Reference`` is the tracker as it was before the performance issue (f841cf4), kept here only
as the oracle: same refusals, same gap counts, per device, at every step and at the close.
"""

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.sequence import DUPLICATE, LATE, RECENT_GAPS, REPLAY, SequenceTracker


class Reference:
    def __init__(self, window: int) -> None:
        self.window, self.gaps, self.gaps_by_device, self.marks = window, 0, {}, {}

    def admit(self, device: str, seq: int) -> str | None:
        m = self.marks.get(device)
        if m is None:
            self.marks[device] = {"first": seq, "high": seq, "seen": {seq},
                                  "gaps": deque(maxlen=RECENT_GAPS)}
            return None
        if seq > m["high"]:
            low, high = max(m["high"] - self.window + 1, m["first"]), seq - self.window
            if high >= low:
                leaving = sum(1 for s in m["seen"] if low <= s <= high)
                self._count(device, (high - low + 1) - leaving)
                m["gaps"].extend(s for s in range(max(low, high - RECENT_GAPS + 1), high + 1)
                                 if s not in m["seen"])
                m["seen"] = {s for s in m["seen"] if s > high}
            m["seen"].add(seq)
            m["high"] = seq
            return None
        if seq > m["high"] - self.window:
            if seq in m["seen"]:
                return DUPLICATE
            m["seen"].add(seq)
            return None
        if seq in m["gaps"]:
            m["gaps"].remove(seq)
            self._count(device, -1)
            return LATE
        return REPLAY

    def _count(self, device: str, n: int) -> None:
        if n:
            self.gaps += n
            self.gaps_by_device[device] = self.gaps_by_device.get(device, 0) + n

    def close(self) -> int:
        found = 0
        for device, m in self.marks.items():
            low = max(m["high"] - self.window + 1, m["first"])
            missing = [s for s in range(low, m["high"]) if s not in m["seen"]]
            m["gaps"].extend(missing)
            m["seen"].update(missing)
            self._count(device, len(missing))
            found += len(missing)
        return found


steps = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3),
                           st.integers(-3, 12)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 8), st.integers(0, 40), steps)
def test_the_fast_tracker_matches_the_reference(window, start, moves):
    fast, ref = SequenceTracker(window), Reference(window)
    position = {"a": start, "b": start}
    for device, jump, back in moves:
        # mostly in order (the fast path), with late, repeated, replayed and far numbers
        position[device] += jump
        seq = max(position[device] - back, 0)
        assert fast.admit(device, seq) == ref.admit(device, seq), (device, seq)
        assert fast.gaps == ref.gaps and fast.gaps_by_device == ref.gaps_by_device
    assert fast.close() == ref.close()
    assert fast.gaps == ref.gaps and fast.gaps_by_device == ref.gaps_by_device
