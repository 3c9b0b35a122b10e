"""The reference sequence tracker (pure Python, one reading at a time; the oracle the compiled
kernel is tested against).

Per-device sequence marks: new readings in, duplicates and replays out, gaps found.

A device numbers its readings. The tracker keeps, per device, the highest sequence number seen
(the high-water mark) and which of the last ``window`` numbers arrived. A reading newer than
the mark is accepted; a late one inside the window is accepted once; a number seen before is a
``duplicate``; one below the window is a ``replay``. A number that never arrived by the time
the mark has moved ``window`` past it is a gap; if it turns up after all, it is refused as
``late`` and no longer counted as a gap, so every reading still ends as exactly one thing.

Each number belongs to a boot of its device (0 when it sends none). A reading of a larger boot
id than the marks follow is a restart: it is accepted whatever its number, the old boot's
window is closed as at the end of a stream (its missing numbers counted as gaps, its
remembered gaps forgotten: a number of the new boot is not one of them), and the marks start
again from it. A reading of a smaller boot id is refused as ``old_boot``.

A number more than ``max_jump`` above the mark (same boot) is refused as ``seq_jump`` and
moves nothing: one forged reading with a huge number must neither mute the device (every later
number below it a ``replay``) nor count billions of gaps. The jump is held: a reading that
follows it (above it by at most ``window``) before the mark moves again confirms it, as a
device that really lost that many readings sends; the marks then start again from that reading,
as at a restart (counted as one; the skipped numbers are not counted as gaps). A device's first
reading (of a boot) sets the marks whatever its number.

>>> j = SequenceTracker(window=4, max_jump=10)
>>> [j.admit("d", s) for s in (0, 1, 2**62, 2, 13, 12)]
[None, None, 'seq_jump', None, 'seq_jump', None]
>>> j.gaps  # 3 to 8 left the window unseen when 12 came; 2**62 and 13 moved nothing
6
>>> [j.admit("d", s) for s in (100, 101, 102, 13)]  # 101 follows the held 100: a restart
['seq_jump', None, None, 'replay']
>>> j.gaps, j.restarts  # 9, 10, 11 missing when the old window closed
(9, 1)

>>> t = SequenceTracker(window=4)
>>> [t.admit("d", s) for s in (0, 1, 3, 3, 2, 9)]
[None, None, None, 'duplicate', None, None]
>>> t.gaps  # 4 and 5 fell out of the window unseen
2
>>> t.admit("d", 4), t.gaps
('late', 1)
>>> t.admit("d", 1)
'replay'
>>> t.close(), t.gaps  # at the end, 6, 7 and 8 are missing too
(3, 4)
>>> t.admit("d", 3, boot=2), t.admit("d", 5, boot=2), t.restarts  # a new boot: accepted
(None, None, 1)
>>> t.admit("d", 9, boot=0), t.admit("d", 3, boot=2), t.gaps
('old_boot', 'duplicate', 4)
>>> t.admit("d", 0, boot=3), t.gaps  # the new boot closes boot 2's window: 4 is missing
(None, 5)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

DUPLICATE = "duplicate"
REPLAY = "replay"
LATE = "late"
OLD_BOOT = "old_boot"
SEQ_JUMP = "seq_jump"


@dataclass(slots=True)
class _Marks:
    first: int  # numbers below a device's first reading (of its boot) are not gaps
    high: int
    boot: int = 0
    jump: int | None = None  # a number refused as seq_jump since the mark last moved
    seen: set[int] = field(default_factory=set)  # numbers in (high - window, high] that arrived
    gaps: deque[int] | None = None  # recent gaps; made at the first (most devices have none)

    def remember(self, numbers: Iterable[int]) -> None:
        if self.gaps is None:
            self.gaps = deque(maxlen=RECENT_GAPS)
        self.gaps.extend(numbers)


#: Gaps remembered per device, so that a very late arrival can be told from a replay.
RECENT_GAPS = 4096


class SequenceTracker:
    """Sequence high-water marks and a reorder window, per device."""

    def __init__(self, window: int = 64, max_jump: int = 2**63 - 1) -> None:
        if window < 1 or max_jump < 1:
            raise ValueError("the reorder window and the largest jump must be at least 1")
        self.window = window
        self.max_jump = max_jump
        self.gaps = 0
        self.gaps_by_device: dict[str, int] = {}
        self.restarts_by_device: dict[str, int] = {}
        self._marks: dict[str, _Marks] = {}

    def admit(self, device: str, seq: int, boot: int = 0) -> str | None:
        """None when ``seq`` of ``boot`` is new for ``device``; else why it is refused."""
        marks = self._marks.get(device)
        if marks is not None and boot != marks.boot:
            if boot < marks.boot:
                return OLD_BOOT
            self._restart(device, marks)
            marks = None
        if marks is not None and seq - marks.high > self.max_jump:
            if marks.jump is None or not marks.jump < seq <= marks.jump + self.window:
                marks.jump = seq
                return SEQ_JUMP
            self._restart(device, marks)  # it follows the held jump: the numbers did jump
            marks = None
        if marks is None:
            self._marks[device] = _Marks(first=seq, high=seq, seen={seq}, boot=boot)
            return None
        if seq > marks.high:
            marks.jump = None
            self._advance(device, marks, seq)
            return None
        if seq > marks.high - self.window:
            if seq in marks.seen:
                return DUPLICATE
            marks.seen.add(seq)
            return None
        if marks.gaps and seq in marks.gaps:
            marks.gaps.remove(seq)
            self._count_gaps(device, -1)
            return LATE
        return REPLAY

    def _restart(self, device: str, marks: _Marks) -> None:
        """Close ``marks``' window as at the end of a stream; count a restart."""
        self._count_gaps(device, len(self._missing(marks)))
        self.restarts_by_device[device] = self.restarts_by_device.get(device, 0) + 1

    def _advance(self, device: str, marks: _Marks, seq: int) -> None:
        """Move the mark up to ``seq``; numbers leaving the window unseen become gaps."""
        low, high = max(marks.high - self.window + 1, marks.first), seq - self.window
        seen = marks.seen
        if high == low:  # the usual step, O(1): one number leaves the window
            if low in seen:
                seen.discard(low)
            else:
                self._count_gaps(device, 1)
                marks.remember((low,))
            if len(seen) >= self.window:  # numbers below a device's first one, long gone
                marks.seen = {s for s in seen if s > high}
        elif high > low:
            seen_leaving = sum(1 for s in seen if low <= s <= high)
            self._count_gaps(device, (high - low + 1) - seen_leaving)
            # remember the most recent of them (a jump of millions is counted, not listed)
            marks.remember(s for s in range(max(low, high - RECENT_GAPS + 1), high + 1)
                           if s not in seen)
            marks.seen = {s for s in seen if s > high}
        marks.seen.add(seq)
        marks.high = seq

    def _count_gaps(self, device: str, n: int) -> None:
        if n == 0:
            return
        self.gaps += n
        self.gaps_by_device[device] = self.gaps_by_device.get(device, 0) + n

    def _missing(self, marks: _Marks) -> list[int]:
        """The numbers the window still misses below the mark."""
        low = max(marks.high - self.window + 1, marks.first)
        return [s for s in range(low, marks.high) if s not in marks.seen]

    def close(self) -> int:
        """The stream has ended: every number missing below a mark is a gap. Returns how many."""
        found = 0
        for device, marks in self._marks.items():
            missing = self._missing(marks)
            if missing:
                marks.remember(missing)
            marks.seen.update(missing)
            self._count_gaps(device, len(missing))
            found += len(missing)
        return found

    @property
    def devices(self) -> int:
        return len(self._marks)

    @property
    def restarts(self) -> int:
        return sum(self.restarts_by_device.values())
