"""From a linear score to a model's prediction, apart from the learner: a predictor needs only
this, not the compiled learning kernel (numba adds ~60 MiB to a process).
"""

from __future__ import annotations

import numpy as np


def output(kind: str, score: float) -> float:
    """A model's prediction from its raw-unit linear score.

    >>> output("regression", 2.5), output("binary", 0.0)
    (2.5, 0.5)
    """
    if kind == "binary":
        return float(1.0 / (1.0 + np.exp(-score)))
    return score
