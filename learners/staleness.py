"""How much an update counts when it was built on an older model (FedAsync's s(τ)).

τ (staleness) is how many versions the model moved on since the update's base version. The
three functions of Xie et al., "Asynchronous Federated Optimization" (2019):

- ``constant``: s(τ) = 1
- ``polynomial``: s(τ) = (τ + 1) ** -a
- ``hinge``: s(τ) = 1 while τ <= b, then 1 / (a (τ - b) + 1)

>>> w = Staleness("polynomial", a=0.5)
>>> [round(w(t), 3) for t in (0, 1, 3, 8)]
[1.0, 0.707, 0.5, 0.333]
>>> h = Staleness("hinge", a=1.0, b=2)
>>> [h(t) for t in (0, 2, 3, 6)]
[1.0, 1.0, 0.5, 0.2]
"""

from __future__ import annotations

from dataclasses import dataclass

FUNCTIONS = ("constant", "polynomial", "hinge")


@dataclass(frozen=True)
class Staleness:
    """s(τ): the weight of an update that is τ versions behind."""

    function: str = "polynomial"
    a: float = 0.5
    b: int = 4

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ValueError(f"staleness function must be one of {', '.join(FUNCTIONS)}, "
                             f"not {self.function!r}")
        if self.a < 0 or self.b < 0:
            raise ValueError("staleness a and b must be >= 0")

    def __call__(self, tau: int) -> float:
        if tau < 0:
            raise ValueError("staleness cannot be negative")
        if self.function == "constant":
            return 1.0
        if self.function == "polynomial":
            return float((tau + 1) ** -self.a)
        return 1.0 if tau <= self.b else 1.0 / (self.a * (tau - self.b) + 1.0)
