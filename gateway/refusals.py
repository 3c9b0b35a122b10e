"""Why a reading the judge refused was refused: its outcome code, explained in one line.

The judge (:mod:`gateway.judge_kernel`) writes only codes and, for a channel's fault, the
channel's index; the words are made here, only for the readings refused.

>>> from types import SimpleNamespace as NS
>>> import numpy as np
>>> from gateway.outcomes import TARGET_NOT_BINARY
>>> rows = NS(code=np.array([TARGET_NOT_BINARY]), arg=np.array([1]), dev=np.array([0]),
...           vals=np.array([[0.5, 3.0]]))
>>> pipe = NS(devices_table=NS(names=["d1"]), config=None, channels=("a", "y"))
>>> explain(rows, 0, pipe)
Rejected('target_not_binary: y=3, not 0 or 1')
"""

from __future__ import annotations

from typing import Any

from gateway.outcomes import (
    CODES,
    DUPLICATE,
    FUTURE,
    LATE,
    MISSING_CHANNEL,
    OLD_BOOT,
    OUTLIER,
    REPLAY,
    SEQ_JUMP,
    STALE,
    TARGET_NOT_BINARY,
)
from gateway.validation import Rejected


def explain(rows: Any, i: int, pipe: Any) -> Rejected:
    """Row ``i`` of a judged block (:class:`~gateway.judge_kernel.JudgeRows`), refused, as a
    :class:`Rejected`; ``pipe`` is the :class:`~gateway.pipeline.ReadingPipeline` that judged
    it (its channels, policies, config and device table)."""
    code = int(rows.code[i])
    reason = CODES[code]
    device = pipe.devices_table.names[rows.dev[i]]
    cfg = pipe.config
    if code in (DUPLICATE, REPLAY, LATE):
        return Rejected(reason, f"{device} seq {rows.seq[i]}")
    if code == OLD_BOOT:
        return Rejected(reason, f"{device} boot {rows.boot[i]} seq {rows.seq[i]}: a later "
                                "boot of it was seen")
    if code == SEQ_JUMP:
        return Rejected(reason, f"{device} seq {rows.seq[i]}: over {cfg.max_seq_jump} above "
                                f"its mark {pipe.devices_table.seq_high[rows.dev[i]]}")
    if code == STALE:
        return Rejected(reason, f"{rows.now[i] - rows.ts[i]:.0f}s old (max {cfg.max_age:g}s)")
    if code == FUTURE:
        return Rejected(reason, f"{rows.ts[i] - rows.now[i]:.0f}s ahead (max {cfg.max_skew:g}s)")
    c = rows.arg[i]
    if code == MISSING_CHANNEL:
        return Rejected(reason, pipe.channels[c])
    if code == TARGET_NOT_BINARY:
        return Rejected(reason, f"{pipe.channels[c]}={rows.vals[i, c]:g}, not 0 or 1")
    if code == OUTLIER:
        return Rejected(reason, f"{pipe.channels[c]}={rows.vals[i, c]:g}, beyond "
                                f"{pipe.policies[c].z:g} robust deviations of the median")
    return Rejected(reason, f"{pipe.lag_features[0]} needs an earlier reading of {device}")
