"""Per-device, per-channel cleaning: fill missing values, tame outliers, optionally smooth.

Each channel has a :class:`ChannelPolicy`:

- ``impute``: a missing value becomes the device's ``last`` observed value or its running
  ``mean``, if one was observed within ``max_age`` seconds; ``none`` never fills (the target's
  default: a made-up label teaches nothing).
- ``outliers``: a value further than ``z`` robust deviations (1.4826 · MAD) from the median of the
  device's last ``window`` values is an outlier (a Hampel filter). ``median`` replaces it with that
  median (the default: a clipped spike still sits ``z`` deviations out and drags the weights;
  measured on the simulated fleet, replacing costs a tenth of the weight error clipping does),
  ``clip`` moves it to the bound, ``reject`` refuses the reading, ``none`` keeps it. Until
  ``min_history`` values are seen, or while the MAD is zero (a stuck sensor), nothing is judged.
- ``smooth``: an exponential moving average with this weight on the new value (None: off).

>>> ChannelPolicy(impute="mean").outliers
'median'
>>> ChannelPolicy(window=2)
Traceback (most recent call last):
...
ValueError: need z > 0, window >= 3 and 1 <= min_history <= window

The rules are applied by the compiled kernel (:mod:`gateway.judge_kernel`), reading by reading; the
pure-Python reference it is tested against is ``tests/reference/cleaning.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from broker.wire import MAX_PAYLOAD_BYTES

IMPUTE = ("last", "mean", "none")
OUTLIERS = ("median", "clip", "reject", "none")


@dataclass(frozen=True)
class ChannelPolicy:
    impute: str = "last"
    max_age: float = 300.0
    outliers: str = "median"
    z: float = 5.0
    window: int = 32
    min_history: int = 8
    smooth: float | None = None

    def __post_init__(self) -> None:
        if self.impute not in IMPUTE:
            raise ValueError(f"impute must be one of {IMPUTE}, not {self.impute!r}")
        if self.outliers not in OUTLIERS:
            raise ValueError(f"outliers must be one of {OUTLIERS}, not {self.outliers!r}")
        if not self.z > 0 or self.window < 3 or not 1 <= self.min_history <= self.window:
            raise ValueError("need z > 0, window >= 3 and 1 <= min_history <= window")
        if self.smooth is not None and not 0 < self.smooth <= 1:
            raise ValueError("smooth must be in (0, 1]")


def target_policy(policy: ChannelPolicy) -> ChannelPolicy:
    """The target's policy: the features' outlier handling, but never imputed (a made-up label
    teaches nothing).

    >>> target_policy(ChannelPolicy(z=25)).impute, target_policy(ChannelPolicy(z=25)).z
    ('none', 25)
    """
    return replace(policy, impute="none", smooth=None)


@dataclass(frozen=True)
class CleaningConfig:
    """What a gateway refuses and how it cleans (the rules: :mod:`gateway.pipeline`)."""

    max_payload: int = MAX_PAYLOAD_BYTES
    allowlist: frozenset[str] | None = None
    max_age: float = 300.0
    max_skew: float = 60.0
    reorder_window: int = 64
    #: How far above a device's mark (same boot) a number may be: one further is refused as
    #: ``seq_jump`` and moves no mark. Devices number their readings one by one from 0 at each
    #: boot, so only lost readings make a jump: this many in one go, without a new boot, is a
    #: forgery or a broken device (at 50 readings/s, 5.5 h of readings lost at once).
    max_seq_jump: int = 1_000_000
    policy: ChannelPolicy = field(default_factory=ChannelPolicy)
    channel_policies: dict[str, ChannelPolicy] = field(default_factory=dict)
    #: A binary task's: a target other than 0 or 1 is refused as ``target_not_binary``.
    binary_target: bool = False

    def __post_init__(self) -> None:
        if self.reorder_window < 1:
            raise ValueError("the reorder window must be at least 1")
        if self.max_seq_jump < self.reorder_window:
            raise ValueError("the largest sequence jump must be at least the reorder window")
