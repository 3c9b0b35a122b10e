"""The gateway's per-reading judging of a block of readings, compiled with numba.

One call takes every reading a turn of the node loop brought in (all devices, in arrival
order) through the sequence marks, the clock window, cleaning and feature building, reading by
reading in order, and writes each one's outcome code (:mod:`gateway.outcomes`) and, when
admitted, its feature row. The rules are those of the reference implementation in
``tests/reference`` (pure Python, one reading at a time), which the tests hold this kernel equal
to; they are described in :mod:`gateway.pipeline`. The kernel takes three named structures of
arrays: the block (:class:`JudgeRows`), the per-device state (:class:`JudgeState`, the arrays of
:class:`gateway.device_state.DeviceTable`) and the policy (:class:`JudgePolicy`, built by
:mod:`gateway.judge_policy`); this module is only arithmetic on them. Its helpers live in
:mod:`gateway.sequence_marks` and :mod:`gateway.hampel`.

>>> sorted(set(JudgeState._fields) & set(JudgePolicy._fields))
[]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from gateway.hampel import insert_sorted, median_mad, replace_sorted
from gateway.outcomes import (
    ADMITTED,
    BELOW,
    FUTURE,
    MISSING_CHANNEL,
    NO_HISTORY,
    OUTLIER,
    PENDING,
    STALE,
    TARGET_NOT_BINARY,
)
from gateway.sequence_marks import RECENT_GAPS, mark

# cleaning policies, as numbers: positions in gateway.cleaning.IMPUTE and OUTLIERS
IMPUTE_LAST, IMPUTE_MEAN, IMPUTE_NONE = 0, 1, 2
OUTLIERS_MEDIAN, OUTLIERS_CLIP, OUTLIERS_REJECT, OUTLIERS_NONE = 0, 1, 2, 3

# features, as numbers
FEATURE_CHANNEL, FEATURE_LAG, FEATURE_SIN, FEATURE_COS, FEATURE_SITE = 0, 1, 2, 3, 4
FEATURE_DEVICE = 5

class JudgeRows(NamedTuple):
    """A block of readings, one row each: what the kernel reads, and what it writes."""

    code: np.ndarray  # int8: outcome code; PENDING rows are judged, others left alone
    arg: np.ndarray  # int64: the channel a missing_channel or outlier refusal names
    dev: np.ndarray  # int64: the device's row in the state
    seq: np.ndarray  # int64
    boot: np.ndarray  # int64: the device's boot id (0: none sent)
    ts: np.ndarray  # float64
    now: np.ndarray  # float64: when the reading's message arrived
    site: np.ndarray  # int64: the site's index, or -1
    unit: np.ndarray  # int64: the device's index among the device one-hot features, or -1
    local: np.ndarray  # float64: seconds from the UTC timestamp to its local time
    vals: np.ndarray  # float64 (rows, channels), NaN where missing; the target last
    clean: np.ndarray  # out, float64 (rows, channels): the cleaned values
    X: np.ndarray  # out, float64 (rows, features)
    Y: np.ndarray  # out, float64: the target


class JudgeState(NamedTuple):
    """Per-device state, one row per device (see :mod:`gateway.device_state`)."""

    seq_boot: np.ndarray  # (devices,): the boot id the marks follow
    seq_first: np.ndarray  # the first number seen (of that boot)
    seq_high: np.ndarray  # the highest number seen
    seq_started: np.ndarray  # uint8: any number seen
    seq_ring: np.ndarray  # uint8 (devices, ring): which numbers of the window arrived
    seq_gaps: np.ndarray  # numbers counted as missing
    seq_restarts: np.ndarray  # new boots seen (and confirmed jumps)
    seq_jump: np.ndarray  # a number refused as SEQ_JUMP since the mark moved, -1: none
    hist: np.ndarray  # (devices, channels, max window): last raw values, a ring
    ordered: np.ndarray  # the same values, sorted
    hist_len: np.ndarray  # (devices, channels): values in the window
    hist_next: np.ndarray  # the ring's next slot
    c_last: np.ndarray  # the last clean value
    c_last_ts: np.ndarray  # its time
    c_count: np.ndarray  # observed values
    c_mean: np.ndarray  # their running mean (clean)
    c_smooth: np.ndarray  # the smoothed value, NaN before the first
    c_median: np.ndarray  # the window's median, after every value
    c_spread: np.ndarray  # its MAD, scaled to a standard deviation
    q_imputed: np.ndarray  # (devices,): values imputed
    q_clipped: np.ndarray  # values replaced or clipped as outliers
    lag_prev: np.ndarray  # (devices, channels): the previous reading's clean values
    lag_has: np.ndarray  # uint8: there is a previous reading
    books: np.ndarray  # (devices, outcomes): each device's outcomes (BELOW ones excepted)


class JudgePolicy(NamedTuple):
    """The gateway's rules as numbers: limits, per channel (the target last), per feature."""

    window: int  # the reorder window
    max_jump: int  # how far above the mark a number may be (further: SEQ_JUMP)
    max_age: float  # seconds a reading may be old
    max_skew: float  # seconds it may be ahead
    impute: np.ndarray  # per channel: IMPUTE_*
    impute_age: np.ndarray  # the last value's max age for imputing
    outliers: np.ndarray  # OUTLIERS_*
    z: np.ndarray  # robust deviations from the median beyond which a value is an outlier
    hist_window: np.ndarray  # values in the window
    min_history: np.ndarray  # values before outliers are judged
    smooth: np.ndarray  # the EMA's weight on the new value, NaN: no smoothing
    feature_kind: np.ndarray  # per feature: FEATURE_*
    feature_index: np.ndarray  # its channel (or site, or device) index
    feature_period: np.ndarray  # a cyclic feature's period in seconds
    binary: bool = False  # the target must be 0 or 1 (else TARGET_NOT_BINARY)


def gap_room(window: int) -> int:
    """Gaps a :class:`gateway.sequence_marks.GapList` should have room for: the kernel stops
    before a row that could list more than there is room for; this leaves room for a few rows.

    >>> gap_room(64)
    16640
    """
    return 4 * (RECENT_GAPS + window)


@njit(cache=True)
def judge_rows(start, rows, policy, state, gaps):
    """Judge ``rows`` from ``start`` on through sequence, clock, cleaning and features, in
    order: a row's cleaned values go to ``rows.clean``, its features to ``rows.X`` and its
    target to ``rows.Y``, its outcome to ``rows.code``; ``state.books`` count each device's.

    Returns (next row, gaps listed in ``gaps``): it stops early, before a row that could list
    more gaps than there is room for, so the caller can take the listed gaps and call again.
    """
    code, arg, dev, ts, now, site = rows.code, rows.arg, rows.dev, rows.ts, rows.now, rows.site
    vals, V, X, Y = rows.vals, rows.clean, rows.X, rows.Y
    window, max_age, max_skew = policy.window, policy.max_age, policy.max_skew
    max_jump = policy.max_jump
    imp, imp_age, outl, z = policy.impute, policy.impute_age, policy.outliers, policy.z
    win, min_history, smooth = policy.hist_window, policy.min_history, policy.smooth
    ftype, fidx, fperiod = policy.feature_kind, policy.feature_index, policy.feature_period
    binary = policy.binary
    hist, ordered, hist_len, hist_next = state.hist, state.ordered, state.hist_len, state.hist_next
    c_last, c_last_ts, c_count, c_mean = state.c_last, state.c_last_ts, state.c_count, state.c_mean
    c_smooth, c_median, c_spread = state.c_smooth, state.c_median, state.c_spread
    lag_prev, lag_has, books = state.lag_prev, state.lag_has, state.books
    room = gaps.row.shape[0]
    n, C = vals.shape
    F = ftype.shape[0]
    has_lag = False
    for f in range(F):
        if ftype[f] == FEATURE_LAG:
            has_lag = True
    clean = np.empty(C)
    raw_kept = np.empty(C)
    observed = np.zeros(C, np.bool_)
    n_gaps = 0
    i = start
    while i < n:
        if code[i] != PENDING:
            i += 1
            continue
        if n_gaps + RECENT_GAPS + window > room:
            break
        d = dev[i]
        t = ts[i]
        outcome, n_gaps = mark(state, d, rows.seq[i], rows.boot[i], window, max_jump, gaps,
                               n_gaps, i)
        if outcome != ADMITTED:
            code[i] = outcome
            if outcome != BELOW:  # DUPLICATE, OLD_BOOT, SEQ_JUMP; the caller books BELOW as late
                books[d, outcome] += 1  # or replay
            i += 1
            continue
        # the clock, after the mark: a reading with a wrong clock has still arrived
        if t < now[i] - max_age:
            code[i] = STALE
            books[d, STALE] += 1
            i += 1
            continue
        if t > now[i] + max_skew:
            code[i] = FUTURE
            books[d, FUTURE] += 1
            i += 1
            continue
        target = vals[i, C - 1]  # a binary task's label: 0 or 1, or missing
        if binary and not math.isnan(target) and target != 0.0 and target != 1.0:
            code[i] = TARGET_NOT_BINARY
            arg[i] = C - 1
            books[d, TARGET_NOT_BINARY] += 1
            i += 1
            continue
        # cleaning, channel by channel
        outcome = ADMITTED
        n_imputed = 0
        n_clipped = 0
        for c in range(C):
            observed[c] = False
            raw = vals[i, c]
            if math.isnan(raw):  # missing: impute, or refuse
                if (imp[c] == IMPUTE_NONE or c_count[d, c] == 0
                        or t - c_last_ts[d, c] > imp_age[c]):
                    outcome = MISSING_CHANNEL
                    arg[i] = c
                    break
                clean[c] = c_last[d, c] if imp[c] == IMPUTE_LAST else c_mean[d, c]
                n_imputed += 1
                continue
            value = raw
            median = c_median[d, c]
            spread = c_spread[d, c]
            if (outl[c] != OUTLIERS_NONE and hist_len[d, c] >= min_history[c]
                    and spread > 0.0 and abs(raw - median) > z[c] * spread):
                if outl[c] == OUTLIERS_REJECT:
                    outcome = OUTLIER
                    arg[i] = c
                    break
                if outl[c] == OUTLIERS_MEDIAN:
                    value = median
                else:
                    value = median + math.copysign(z[c] * spread, raw - median)
                n_clipped += 1
            if not math.isnan(smooth[c]):
                prev = c_smooth[d, c]
                if not math.isnan(prev):
                    value = smooth[c] * value + (1.0 - smooth[c]) * prev
                c_smooth[d, c] = value
            clean[c] = value
            raw_kept[c] = raw
            observed[c] = True
        if outcome != ADMITTED:
            code[i] = outcome
            books[d, outcome] += 1
            i += 1
            continue
        # state learns only from readings that pass, and from what was observed, not filled
        for c in range(C):
            if not observed[c]:
                continue
            size = win[c]
            k = hist_len[d, c]
            if k < size:
                hist[d, c, k] = raw_kept[c]
                insert_sorted(ordered, d, c, k, raw_kept[c])
                hist_len[d, c] = k + 1
            else:
                slot = hist_next[d, c]
                replace_sorted(ordered, d, c, size, hist[d, c, slot], raw_kept[c])
                hist[d, c, slot] = raw_kept[c]
                hist_next[d, c] = slot + 1 if slot + 1 < size else 0
            c_last[d, c] = clean[c]
            c_last_ts[d, c] = t
            c_count[d, c] += 1
            c_mean[d, c] += (clean[c] - c_mean[d, c]) / c_count[d, c]
            c_median[d, c], c_spread[d, c] = median_mad(ordered, d, c, hist_len[d, c])
        for c in range(C):
            V[i, c] = clean[c]
        state.q_imputed[d] += n_imputed
        state.q_clipped[d] += n_clipped
        # features; the lag state moves on even if this reading is refused for lack of it
        had_lag = lag_has[d]
        for f in range(F):
            kind = ftype[f]
            if kind == FEATURE_CHANNEL:
                X[i, f] = clean[fidx[f]]
            elif kind == FEATURE_LAG:
                X[i, f] = lag_prev[d, fidx[f]]
            elif kind == FEATURE_SITE:
                X[i, f] = 1.0 if site[i] == fidx[f] else 0.0
            elif kind == FEATURE_DEVICE:
                X[i, f] = 1.0 if rows.unit[i] == fidx[f] else 0.0
            else:
                period = fperiod[f]
                local = t + rows.local[i]
                angle = 2.0 * math.pi * (local % period) / period
                X[i, f] = math.sin(angle) if kind == FEATURE_SIN else math.cos(angle)
        Y[i] = clean[C - 1]
        if has_lag:
            for c in range(C):
                lag_prev[d, c] = clean[c]
            lag_has[d] = 1
            if not had_lag:
                code[i] = NO_HISTORY
                books[d, NO_HISTORY] += 1
                i += 1
                continue
        code[i] = ADMITTED
        books[d, ADMITTED] += 1
        i += 1
    return i, n_gaps

