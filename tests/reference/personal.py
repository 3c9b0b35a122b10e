"""The reference of the personal parts' mixing (:mod:`learners.personal_kernel`), one row at a
time in plain Python: the weights ``(a1, a2)`` of the own model and its slow twin minimise
the forgotten squared error ``Σ λ^age (e - a1 d1 - a2 d2)²`` (``e = y - g``, ``d_i`` each
model's difference from the global prediction ``g``) over the simplex ``a1, a2 >= 0``,
``a1 + a2 <= 1``: the least of the global model alone, the unconstrained solution if it lies
inside, and the best point of each edge. No evidence yet: the own model if it ever agreed with
``g`` exactly, else the global one; while the own model has only agreed, the weight the slow
one does not take is the own model's.

>>> ref = ReferenceMix()
>>> [ref.step(0.0, 1.0, 1.0, 1.0) for _ in range(2)]
[0.0, 1.0]
"""

from __future__ import annotations

import math


def _error(a1: float, a2: float, s: dict[str, float]) -> float:
    """The forgotten squared error of the mix less the global model's."""
    return (a1 * a1 * s["11"] + 2 * a1 * a2 * s["12"] + a2 * a2 * s["22"]
            - 2 * (a1 * s["1"] + a2 * s["2"]))


def _clamp(v: float) -> float:
    return min(max(v, 0.0), 1.0)


class ReferenceMix:
    def __init__(self, decay: float = 0.99) -> None:
        self.decay = decay
        self.s = {"11": 0.0, "12": 0.0, "22": 0.0, "1": 0.0, "2": 0.0}
        self.seen = False
        self.agreed = False

    def weights(self) -> tuple[float, float]:
        if not self.seen:
            return (1.0, 0.0) if self.agreed else (0.0, 0.0)
        s = self.s
        candidates = [(0.0, 0.0)]
        det = s["11"] * s["22"] - s["12"] ** 2
        if det > 0 and det > 1e-12 * s["11"] * s["22"]:
            a1 = (s["1"] * s["22"] - s["2"] * s["12"]) / det
            a2 = (s["2"] * s["11"] - s["1"] * s["12"]) / det
            if a1 >= 0 and a2 >= 0 and a1 + a2 <= 1:
                candidates.append((a1, a2))
        if s["11"] > 0:
            candidates.append((_clamp(s["1"] / s["11"]), 0.0))
        if s["22"] > 0:
            candidates.append((0.0, _clamp(s["2"] / s["22"])))
        q = s["11"] - 2 * s["12"] + s["22"]
        if q > 0:
            t = _clamp((s["22"] - s["12"] - s["2"] + s["1"]) / q)
            candidates.append((t, 1.0 - t))
        best = candidates[0]
        for c in candidates[1:]:  # the first of the least
            if _error(*c, s) < _error(*best, s):
                best = c
        if self.agreed and s["11"] == 0.0:
            best = (1.0 - best[1], best[1])
        return best

    def step(self, g: float, own: float, slow: float, y: float, blank: bool = False) -> float:
        """The mixed prediction of one row, then learn from it."""
        if blank:
            return g
        a1, a2 = self.weights()
        d1, d2, e = own - g, slow - g, y - g
        out = g + a1 * d1 + a2 * d2
        if d1 == 0.0:
            self.agreed = True
        if d1 == 0.0 and d2 == 0.0:
            return out
        lam, s = self.decay, self.s
        s["11"] = lam * s["11"] + d1 * d1
        s["12"] = lam * s["12"] + d1 * d2
        s["22"] = lam * s["22"] + d2 * d2
        s["1"] = lam * s["1"] + d1 * e
        s["2"] = lam * s["2"] + d2 * e
        self.seen = True
        return out


def _logit(p: float, eps: float = 1e-12) -> float:
    q = min(max(p, eps), 1.0 - eps)
    return math.log(q / (1.0 - q))


class ReferenceLogisticMix(ReferenceMix):
    """Binary tasks: probabilities mixed in log-odds, ``p = sigmoid(zg + a1 d1 + a2 d2)``
    (``d_i`` the own models' log-odds less the global one's), the weights by the same least
    squares on the forgotten sums of an IRLS step for the class-weighted log-loss:
    ``w = p (1 - p) c`` (at least ``1e-6 c``) and the working residual
    ``c (y - p) + w (a1 d1 + a2 d2)``.

    >>> ref = ReferenceLogisticMix()
    >>> round(ref.step(0.5, 0.9, 0.9, 1.0, 1.0), 3)  # no evidence, never agreed: global
    0.5
    >>> ref.step(0.5, 0.9, 0.9, 1.0, 1.0) > 0.5  # the own models were right
    True
    """

    def step(self, g: float, own: float, slow: float, y: float, c: float = 1.0,
             blank: bool = False) -> float:
        if blank:
            return g
        a1, a2 = self.weights()
        zg = _logit(g)
        d1, d2 = _logit(own) - zg, _logit(slow) - zg
        p = 1.0 / (1.0 + math.exp(-(zg + a1 * d1 + a2 * d2)))
        if d1 == 0.0:
            self.agreed = True
        if d1 == 0.0 and d2 == 0.0:
            return p
        w = max(p * (1.0 - p), 1e-6) * c
        e = c * (y - p) + w * (a1 * d1 + a2 * d2)
        lam, s = self.decay, self.s
        s["11"] = lam * s["11"] + w * d1 * d1
        s["12"] = lam * s["12"] + w * d1 * d2
        s["22"] = lam * s["22"] + w * d2 * d2
        s["1"] = lam * s["1"] + d1 * e
        s["2"] = lam * s["2"] + d2 * e
        self.seen = True
        return p
