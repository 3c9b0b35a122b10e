"""The gateway's per-reading work on a block of readings, compiled with numba.

One call takes every reading a turn of the node loop brought in (all devices, in arrival
order) through the sequence marks, the clock window, cleaning and feature building, reading by
reading in order, and writes each one's outcome code and, when admitted, its feature row. The
rules are those of the reference implementation in ``tests/reference`` (pure Python, one
reading at a time), which the tests hold this kernel equal to; they are described in
:mod:`gateway.pipeline`. The per-device state lives in the arrays of
:class:`gateway.devices.DeviceTable`; this module is only arithmetic on arrays.

Outcome codes (``code``): :data:`PENDING` rows are processed; rows marked
:data:`REFUSED` before the call (decoding, ids) are left alone. A row below a device's reorder
window comes out as :data:`BELOW`: whether it is ``late`` (a counted gap that turned up) or a
``replay`` is decided afterwards from the gaps list, which lives in Python.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# outcome codes of a row
ADMITTED = 0
DUPLICATE = 1
BELOW = 2
STALE = 3
FUTURE = 4
MISSING_CHANNEL = 5
OUTLIER = 6
NO_HISTORY = 7
PENDING = 8
REFUSED = 9
# decided in Python, after the kernel: what a BELOW row is; a block the kernel failed on
REPLAY = 10
LATE = 11
INTERNAL = 12
CODES = ("admitted", "duplicate", "below_window", "stale", "future", "missing_channel",
         "outlier", "no_history", "pending", "refused", "replay", "late", "internal_error")

# cleaning policies, as numbers: positions in gateway.cleaning.IMPUTE and OUTLIERS
IMPUTE_LAST, IMPUTE_MEAN, IMPUTE_NONE = 0, 1, 2
OUTLIERS_MEDIAN, OUTLIERS_CLIP, OUTLIERS_REJECT, OUTLIERS_NONE = 0, 1, 2, 3

# features, as numbers
FEATURE_CHANNEL, FEATURE_LAG, FEATURE_SIN, FEATURE_COS, FEATURE_SITE = 0, 1, 2, 3, 4

MAD_TO_SD = 1.4826
#: Observations between two recomputations of a channel's median and MAD.
REFRESH_EVERY = 8
#: Gaps remembered per device, so that a very late arrival can be told from a replay.
RECENT_GAPS = 4096


@njit(cache=True, inline="always")
def _middle(ordered, d, c, n):
    half = n // 2
    return ordered[d, c, half] if n % 2 else 0.5 * (ordered[d, c, half - 1] + ordered[d, c, half])


@njit(cache=True, inline="always")
def _refresh(ordered, d, c, n):
    """Median and MAD (scaled to a standard deviation) of the first n values of
    ``ordered[d, c]`` (kept sorted): the deviations are read in order from the median
    outwards, no sort."""
    median = _middle(ordered, d, c, n)
    lo, hi = 0, n
    while lo < hi:  # the first value >= the median
        mid = (lo + hi) // 2
        if ordered[d, c, mid] < median:
            lo = mid + 1
        else:
            hi = mid
    left, right = lo - 1, lo
    half = n // 2
    previous = current = 0.0
    for k in range(half + 1):
        if right < n and (left < 0 or
                          ordered[d, c, right] - median <= median - ordered[d, c, left]):
            current = ordered[d, c, right] - median
            right += 1
        else:
            current = median - ordered[d, c, left]
            left -= 1
        if k == half - 1:
            previous = current
    return median, MAD_TO_SD * (current if n % 2 else 0.5 * (previous + current))


@njit(cache=True, inline="always")
def _insert(ordered, d, c, n, value):
    """Put ``value`` into the sorted first n values of ``ordered[d, c]`` (room for n + 1)."""
    k = n
    while k > 0 and ordered[d, c, k - 1] > value:
        ordered[d, c, k] = ordered[d, c, k - 1]
        k -= 1
    ordered[d, c, k] = value


@njit(cache=True, inline="always")
def _replace(ordered, d, c, n, old, value):
    """Swap one ``old`` in the sorted first n values of ``ordered[d, c]`` for ``value``.

    Positions are counted, not searched (no unpredictable branches), then the values between
    move by one."""
    row = ordered[d, c]
    at = 0  # where old is
    to = 0  # where value goes, among the others
    for k in range(n):
        v = row[k]
        at += v < old
        to += v < value
    to -= old < value
    if to >= at:
        for k in range(at, to):
            row[k] = row[k + 1]
    else:
        for k in range(at, to, -1):
            row[k] = row[k - 1]
    row[to] = value


@njit(cache=True, inline="always")
def _mark(d, s, W, first, high, started, ring, gaps, gap_row, gap_dev, gap_seq, n_gaps, row):
    """The sequence step of one reading: ADMITTED (new), DUPLICATE or BELOW. Numbers leaving
    the window unseen are counted as gaps, and the most recent of them listed.

    ``ring[d]`` says which numbers of the window arrived, number x at ``x & mask``: its length
    is a power of two >= W (a mask, not a division, on every reading), and slots are cleared as
    the mark passes them, so none speaks for a number outside the window."""
    R = ring.shape[1]
    mask = R - 1
    if not started[d]:
        started[d] = 1
        first[d] = s
        high[d] = s
        for k in range(R):
            ring[d, k] = 0
        ring[d, s & mask] = 1
        return ADMITTED, n_gaps
    h = high[d]
    if s > h:
        low = max(h - W + 1, first[d])
        top = s - W
        if top >= low:
            listed_from = max(low, top - RECENT_GAPS + 1)
            count = 0
            for g in range(low, min(top, h) + 1):  # numbers the window still knows
                if ring[d, g & mask] == 0:
                    count += 1
                    if g >= listed_from:
                        gap_row[n_gaps] = row
                        gap_dev[n_gaps] = d
                        gap_seq[n_gaps] = g
                        n_gaps += 1
            if top > h:  # numbers never inside the window: all missing
                count += top - h
                for g in range(max(h + 1, listed_from), top + 1):
                    gap_row[n_gaps] = row
                    gap_dev[n_gaps] = d
                    gap_seq[n_gaps] = g
                    n_gaps += 1
            gaps[d] += count
        if s - h >= R:
            for k in range(R):
                ring[d, k] = 0
        else:
            for g in range(h + 1, s + 1):
                ring[d, g & mask] = 0
        ring[d, s & mask] = 1
        high[d] = s
        return ADMITTED, n_gaps
    if s > h - W:
        if ring[d, s & mask]:
            return DUPLICATE, n_gaps
        ring[d, s & mask] = 1
        return ADMITTED, n_gaps
    return BELOW, n_gaps


@njit(cache=True)
def process_rows(start, code, arg, dev, seq, ts, now, site, vals, V, X, Y, limits, policy, plan,
                 state, gap_row, gap_dev, gap_seq):
    """Take rows ``start..`` through sequence, clock, cleaning and features, in order: a
    row's cleaned values go to ``V``, its features to ``X`` and its target to ``Y``.

    ``limits``: (reorder window, max age, max skew); ``policy``: per channel arrays (impute,
    its max age, outliers, z, window, min history, smooth or NaN); ``plan``: per feature
    (kind, index, period); ``state``: the device table's arrays
    (:meth:`gateway.devices.DeviceTable.kernel_state`), whose ``books`` count each device's
    outcomes (BELOW ones excepted). Returns (next row, gaps listed in
    ``gap_*``): it stops early, before a row that could list more gaps than there is room for,
    so the caller can take the listed gaps and call again.
    """
    window, max_age, max_skew = limits
    imp, imp_age, outl, z, win, min_history, smooth = policy
    ftype, fidx, fperiod = plan
    (seq_first, seq_high, seq_started, seq_ring, seq_gaps, hist, ordered, hist_len, hist_next,
     c_last, c_last_ts, c_count, c_mean, c_smooth, c_median, c_spread, c_since, q_imputed,
     q_clipped, lag_prev, lag_has, books) = state
    gap_room = gap_row.shape[0]
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
        if n_gaps + RECENT_GAPS + window > gap_room:
            break
        d = dev[i]
        t = ts[i]
        outcome, n_gaps = _mark(d, seq[i], window, seq_first, seq_high, seq_started, seq_ring,
                                seq_gaps, gap_row, gap_dev, gap_seq, n_gaps, i)
        if outcome != ADMITTED:
            code[i] = outcome
            if outcome == DUPLICATE:  # BELOW: the caller books it as late or replay
                books[d, DUPLICATE] += 1
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
                _insert(ordered, d, c, k, raw_kept[c])
                hist_len[d, c] = k + 1
            else:
                slot = hist_next[d, c]
                _replace(ordered, d, c, size, hist[d, c, slot], raw_kept[c])
                hist[d, c, slot] = raw_kept[c]
                hist_next[d, c] = slot + 1 if slot + 1 < size else 0
            c_last[d, c] = clean[c]
            c_last_ts[d, c] = t
            c_count[d, c] += 1
            c_mean[d, c] += (clean[c] - c_mean[d, c]) / c_count[d, c]
            c_since[d, c] += 1
            if c_since[d, c] >= REFRESH_EVERY or hist_len[d, c] <= REFRESH_EVERY:
                c_median[d, c], c_spread[d, c] = _refresh(ordered, d, c, hist_len[d, c])
                c_since[d, c] = 0
        for c in range(C):
            V[i, c] = clean[c]
        q_imputed[d] += n_imputed
        q_clipped[d] += n_clipped
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
            else:
                period = fperiod[f]
                angle = 2.0 * math.pi * (t % period) / period
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
