"""The faults a :class:`devices.faults.FaultInjector` can inject, and their rates.

>>> sorted(FaultRates.parse("restart=0.01,all=0.1").rates.items())[:3]
[('duplicate', 0.1), ('id_mismatch', 0.1), ('late', 0.1)]
>>> FaultRates.parse("restart=0.01,all=0.1").rate("restart")
0.01
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Faults that change a numbered reading but leave it learnable.
VALUE_FAULTS = ("missing", "noise", "spike", "stuck")
#: Faults of delivery and clocks on a numbered reading.
DELIVERY_FAULTS = ("duplicate", "reorder", "late", "lost", "skew_past", "skew_future",
                   "restart")
#: Extra messages that a gateway must refuse (``old_boot`` only after a restart).
EXTRA_FAULTS = ("malformed", "wrong_type", "nan", "oversized", "unknown_device", "id_mismatch",
                "old_boot")
FAULTS = VALUE_FAULTS + DELIVERY_FAULTS + EXTRA_FAULTS


@dataclass(frozen=True)
class FaultRates:
    """Per-reading probability of each fault, and the shape of the faults."""

    rates: dict[str, float] = field(default_factory=dict)
    warmup: int = 10  # first readings of each device (and boot): clean, so cleaning has a history
    skew: float = 86_400.0  # seconds a skewed clock is off
    late_by: tuple[int, int] = (3, 10)  # a late reading arrives after this many newer ones
    burst: int = 10  # readings a noise burst or a stuck sensor lasts

    def __post_init__(self) -> None:
        for name, rate in self.rates.items():
            if name not in FAULTS:
                raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name}={rate} is not in [0, 1]")

    @classmethod
    def parse(cls, text: str) -> FaultRates:
        """``all=0.05,spike=0.1``: ``all`` sets every fault, named ones override it.

        >>> FaultRates.parse("all=0.1,lost=0").rates["lost"], FaultRates.parse("").rates
        (0.0, {})
        """
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"fault {part!r} is not NAME=RATE") from None
            if name == "all":
                rates.update({f: rate for f in FAULTS if f not in rates})
            else:
                rates[name] = rate
        return cls(rates=rates)

    def rate(self, fault: str) -> float:
        return self.rates.get(fault, 0.0)
