"""How a reading ends at the gateway: one outcome code per reading, and its name.

The compiled judge (:mod:`gateway.judge_kernel`) writes the codes; the pipeline counts and
explains them. Rows marked :data:`REFUSED` before judging (decoding, ids) are left alone, the
others start :data:`PENDING`. A row below a device's reorder window comes out of the kernel as
:data:`BELOW`; whether it is :data:`LATE` (a counted gap that turned up) or a :data:`REPLAY` is
decided afterwards from the gaps list, which lives in Python. A reading of an earlier boot of
its device than the one the marks follow is :data:`OLD_BOOT`; a number further above the
device's mark than the policy's ``max_seq_jump`` is :data:`SEQ_JUMP` (it moves no mark). In a
binary task, a target other than 0 or 1 is :data:`TARGET_NOT_BINARY`.

>>> CODES[OUTLIER], CODES.index("late") == LATE
('outlier', True)
"""

from __future__ import annotations

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
OLD_BOOT = 13
SEQ_JUMP = 14
TARGET_NOT_BINARY = 15
#: The name of each code, as the accounting and the dead letters give it.
CODES = ("admitted", "duplicate", "below_window", "stale", "future", "missing_channel",
         "outlier", "no_history", "pending", "refused", "replay", "late", "internal_error",
         "old_boot", "seq_jump", "target_not_binary")
