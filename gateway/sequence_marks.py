"""The sequence step of the gateway's judge, compiled: is a reading's number new, a duplicate,
or below the device's reorder window? Numbers leaving the window unseen are counted as gaps.

Per device the state (:class:`gateway.judge_kernel.JudgeState`) keeps the boot id its numbers
belong to, the first and highest number seen and a ring of which of the last ``window`` numbers
arrived. A reading of a later boot (the device restarted its numbers) closes the old boot's
window, its missing numbers counted as gaps, and the marks start again from it; a reading of an
earlier boot is refused (OLD_BOOT); a number more than ``max_jump`` above the mark is refused
(SEQ_JUMP) and moves nothing, so one forged huge number neither mutes the device nor counts
billions of gaps. It is held: the next such number that follows it (above it by at most the
window) confirms the jump, which then counts as a restart. :func:`mark` is inlined
into :func:`gateway.judge_kernel.judge_rows`; the rules it follows are those of
``tests/reference/sequence.py`` (see also :mod:`gateway.pipeline`).

numba's cache follows only the file of the function it compiled, by a hash of its content
(numba 0.68; touching it is not enough): after editing this module, delete
``gateway/__pycache__/judge_kernel.*.nb[ci]`` so the judge is rebuilt.

>>> RECENT_GAPS
4096
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gateway.outcomes import ADMITTED, BELOW, DUPLICATE, OLD_BOOT, SEQ_JUMP

#: Gaps remembered per device, so that a very late arrival can be told from a replay.
RECENT_GAPS = 4096
#: The number a :class:`GapList` entry has when it is no gap but a restart: the device's
#: remembered gaps (of the old boot) are to be forgotten there.
RESTART = -1


class GapList(NamedTuple):
    """Where the kernel lists the gaps it finds, in order: the row that moved the mark past
    the gap, the device's row in the state, the missing number (:data:`RESTART`: that row
    started a new boot).

    >>> GapList.empty(3).seq.shape
    (3,)
    """

    row: np.ndarray
    device: np.ndarray
    seq: np.ndarray

    @classmethod
    def empty(cls, room: int) -> GapList:
        return cls(np.empty(room, np.int64), np.empty(room, np.int64), np.empty(room, np.int64))


@njit(cache=True, inline="always")
def restart(state, d, window, gaps, n_gaps, row):
    """Device ``d`` starts a new boot at ``row``: the numbers its old boot's window still
    misses are counted as gaps (as at the end of a stream), the restart is counted and listed
    (:data:`RESTART`). Returns how many entries ``gaps`` holds now."""
    high, ring = state.seq_high[d], state.seq_ring
    mask = ring.shape[1] - 1
    count = 0
    for g in range(max(high - window + 1, state.seq_first[d]), high):
        if ring[d, g & mask] == 0:
            count += 1
    state.seq_gaps[d] += count
    state.seq_restarts[d] += 1
    gaps.row[n_gaps] = row
    gaps.device[n_gaps] = d
    gaps.seq[n_gaps] = RESTART
    return n_gaps + 1


@njit(cache=True, inline="always")
def mark(state, d, s, b, window, max_jump, gaps, n_gaps, row):
    """The sequence step of reading ``row`` (device ``d``, number ``s``, boot ``b``): returns
    ADMITTED (new), DUPLICATE, BELOW, OLD_BOOT or SEQ_JUMP (more than ``max_jump`` above the
    mark and not following a held jump: nothing moves but the hold), and how many gaps are
    listed in ``gaps`` now. Numbers leaving the window unseen are counted in
    ``state.seq_gaps``, and the most recent of them listed.

    ``state.seq_ring[d]`` says which numbers of the window arrived, number x at ``x & mask``:
    its length is a power of two >= the window (a mask, not a division, on every reading), and
    slots are cleared as the mark passes them, so none speaks for a number outside the window."""
    first, high, ring = state.seq_first, state.seq_high, state.seq_ring
    R = ring.shape[1]
    mask = R - 1
    if state.seq_started[d] and b != state.seq_boot[d]:
        if b < state.seq_boot[d]:
            return OLD_BOOT, n_gaps
        n_gaps = restart(state, d, window, gaps, n_gaps, row)
        state.seq_started[d] = 0
    if state.seq_started[d] and s > high[d] and s - high[d] > max_jump:  # both >= 0
        held = state.seq_jump[d]
        if held < 0 or not held < s <= held + window:
            state.seq_jump[d] = s
            return SEQ_JUMP, n_gaps
        n_gaps = restart(state, d, window, gaps, n_gaps, row)  # it follows the held jump
        state.seq_started[d] = 0
    if not state.seq_started[d]:
        state.seq_started[d] = 1
        state.seq_jump[d] = -1
        state.seq_boot[d] = b
        first[d] = s
        high[d] = s
        for k in range(R):
            ring[d, k] = 0
        ring[d, s & mask] = 1
        return ADMITTED, n_gaps
    h = high[d]
    if s > h:
        state.seq_jump[d] = -1
        low = max(h - window + 1, first[d])
        top = s - window
        if top >= low:
            listed_from = max(low, top - RECENT_GAPS + 1)
            count = 0
            for g in range(low, min(top, h) + 1):  # numbers the window still knows
                if ring[d, g & mask] == 0:
                    count += 1
                    if g >= listed_from:
                        gaps.row[n_gaps] = row
                        gaps.device[n_gaps] = d
                        gaps.seq[n_gaps] = g
                        n_gaps += 1
            if top > h:  # numbers never inside the window: all missing
                count += top - h
                for g in range(max(h + 1, listed_from), top + 1):
                    gaps.row[n_gaps] = row
                    gaps.device[n_gaps] = d
                    gaps.seq[n_gaps] = g
                    n_gaps += 1
            state.seq_gaps[d] += count
        if s - h >= R:
            for k in range(R):
                ring[d, k] = 0
        else:
            for g in range(h + 1, s + 1):
                ring[d, g & mask] = 0
        ring[d, s & mask] = 1
        high[d] = s
        return ADMITTED, n_gaps
    if s > h - window:
        if ring[d, s & mask]:
            return DUPLICATE, n_gaps
        ring[d, s & mask] = 1
        return ADMITTED, n_gaps
    return BELOW, n_gaps
